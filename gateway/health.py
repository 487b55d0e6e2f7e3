"""The gateway's probes: `GET /livez` and `GET /readyz`, on the API's port, without a client certificate.

The gateway's port is TLS-only but asks for a client certificate without
requiring one (the v1 tree answers 403 without one, `/openapi.json` needs
none), so the kubelet's HTTPS probes, which present none and verify none,
reach these paths as they reach `/openapi.json`; no second port is needed.
Neither names a host, a target or a site.

- `/livez`: always 200 (`{"status_code":1000,...}`): the process's event loop answers.
- `/readyz`: 200 when every backend service (ingest, query, vector) answers
  the gRPC health Check for its service name with SERVING within
  `timeout_s`, else 503 with status 1500 and the services that failed. A
  service is NOT_SERVING while its store is down (services/lib/rpc/readiness.py),
  so a store outage takes the gateway out of its Service's endpoints too. The
  answer is cached for `cache_s`: probes from many kubelets cost one round of
  Checks per second per gateway process.
"""

from __future__ import annotations

import asyncio
import logging
import time

import grpc
import msgspec
from grpc_health.v1 import health_pb2, health_pb2_grpc
from starlette.types import Receive, Scope, Send

from gateway.backends import Backends
from gateway.config import GatewaySettings
from gateway.responses import ApiResponse
from storecast.status import STATUS, ApiStatus
from storecast.v1 import ingest_pb2, query_pb2, vector_pb2

log = logging.getLogger("storecast.gateway")

PATHS = ("/livez", "/readyz")
_SERVICE_NAMES = {
    "ingest": ingest_pb2.DESCRIPTOR.services_by_name["Ingest"].full_name,
    "query": query_pb2.DESCRIPTOR.services_by_name["Query"].full_name,
    "vector": vector_pb2.DESCRIPTOR.services_by_name["Vector"].full_name,
}
_LIVE = msgspec.json.encode({"status_code": ApiStatus.SUCCESS, "status_message": STATUS[ApiStatus.SUCCESS].message})


class Probes:
    """Answers /livez and /readyz."""

    def __init__(self, settings: GatewaySettings, backends: Backends, *, timeout_s: float = 1.0, cache_s: float = 1.0) -> None:
        targets = {"ingest": settings.ingest_target, "query": settings.query_target, "vector": settings.vector_target}
        self._stubs = {name: health_pb2_grpc.HealthStub(backends.channel(target)) for name, target in targets.items()}
        self._timeout_s = timeout_s
        self._cache_s = cache_s
        self._checked = -float("inf")
        self._statuses: dict[str, str] = {}
        self._lock = asyncio.Lock()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["path"] == "/livez":
            response = ApiResponse(_LIVE, ApiStatus.SUCCESS)
        else:
            response = await self.readiness()
        await response(scope, receive, send)

    async def readiness(self) -> ApiResponse:
        statuses = await self.statuses()
        failing = [f"{name} {status}" for name, status in statuses.items() if status != "SERVING"]
        body: dict[str, object]
        if failing:
            message = f"{STATUS[ApiStatus.SERVER_ERROR].message}: not ready: {', '.join(failing)}"
            body = {"status_code": ApiStatus.SERVER_ERROR, "status_message": message, "services": statuses}
            return ApiResponse(msgspec.json.encode(body), ApiStatus.SERVER_ERROR, status_code=503)
        body = {"status_code": ApiStatus.SUCCESS, "status_message": STATUS[ApiStatus.SUCCESS].message, "services": statuses}
        return ApiResponse(msgspec.json.encode(body), ApiStatus.SUCCESS)

    async def statuses(self) -> dict[str, str]:
        """Each service's health status (or how its Check failed), at most `cache_s` old."""
        async with self._lock:
            if time.monotonic() - self._checked >= self._cache_s:
                names = list(self._stubs)
                results = await asyncio.gather(*(self._check(name) for name in names))
                statuses = dict(zip(names, results))
                if statuses != self._statuses:
                    log.warning("backends: %s", ", ".join(f"{name} {status}" for name, status in statuses.items()))
                self._statuses, self._checked = statuses, time.monotonic()
            return self._statuses

    async def _check(self, name: str) -> str:
        request = health_pb2.HealthCheckRequest(service=_SERVICE_NAMES[name])
        try:
            reply: health_pb2.HealthCheckResponse = await self._stubs[name].Check(request, timeout=self._timeout_s)
        except grpc.aio.AioRpcError as error:
            unreachable = error.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
            return "unreachable" if unreachable else "unknown"
        status: str = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
        return status
