"""The gateway's Prometheus metrics and its access log: one observation per request.

Requests are counted by route template (`/v1/{site_id}/production/{type}/{id}`,
`/ext/v1/{site_id}/inventory`), never by their path, so the label values are a
short fixed list whatever clients send. Neither the template nor the API status
code is worked out here: the router that matched the path notes its template
(`note_route`: gateway/routing.py's shape, gateway/ext_routing.py's match, the
fixed paths of gateway/app.py's Dispatch), and every API response notes the
status code it was built with when it is sent (gateway/responses.py's
ApiResponse), the 1500 of an escaped error included. A path no router
matched is `other`; a response without the API envelope has no API status.

In `serve all` the gateway runs in worker processes; these metrics are then
written in prometheus-client's multiprocess mode and served, summed over the
workers, by the parent (storecast/metrics.py).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Collection
from typing import Any

from prometheus_client import Counter, Gauge, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.tls import client_common_name

# The families storecast/metrics.py takes from the gateway workers in `serve all`.
FAMILY_PREFIX = "storecast_http_"

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

HTTP_REQUESTS = Counter(
    "storecast_http_requests",
    "HTTP requests answered, by route template, method, HTTP status and API status code (none: no API envelope).",
    ["route", "method", "status", "api_status"],
)
HTTP_DURATION = Histogram(
    "storecast_http_request_duration_seconds",
    "Time from a request's arrival to the end of its response, by route template and method.",
    ["route", "method"],
    buckets=LATENCY_BUCKETS,
)
HTTP_IN_FLIGHT = Gauge("storecast_http_requests_in_flight", "HTTP requests being handled.", multiprocess_mode="livesum")
BODY_BYTES_IN_FLIGHT = Gauge(
    "storecast_http_request_body_bytes_in_flight",
    "Bytes of PUT bodies read (decoded) and held by requests not yet answered.",
    multiprocess_mode="livesum",
)

OTHER = "other"  # any path no router matched: one label value for all of them
_METHODS = frozenset({"GET", "HEAD", "PUT", "POST"})  # POST: the InfluxDB writes (gateway/influx/api.py)
_NO_STATUS = "none"

access_log = logging.getLogger("storecast.access")


def note_route(scope: Scope, route: str) -> None:
    """The route template the request's path matched, as its router names it."""
    scope["state"]["route"] = route


def note_api_status(scope: Scope, code: int) -> None:
    """The API status code of the response being sent."""
    scope.setdefault("state", {})["api_status"] = code


def hold_body_bytes(state: dict[str, Any], size: int) -> None:
    """Count `size` bytes of a body as held until the request is answered (ObserveMiddleware releases them)."""
    BODY_BYTES_IN_FLIGHT.inc(size)
    state["body_bytes"] = state.get("body_bytes", 0) + size


def note_records(scope: Scope, records: int) -> None:
    """The records a request stored or read, for its access log line."""
    scope["state"]["records"] = records


class ObserveMiddleware:
    """Counts and times every HTTP request, and logs it as one JSON line.

    Outermost, so that it sees the final answer: the route, the API status, the
    request id and the CN are read from the request state the inner layers fill
    in (the routers, ApiResponse, RequestIdMiddleware, the Gatekeeper); a
    request refused before its identity was read (404, 405) is logged with the
    CN of its TLS certificate, or none behind an ingress.
    """

    def __init__(self, app: ASGIApp, *, trusted_header: bool, quiet_routes: Collection[str] = ()) -> None:
        self.app = app
        self._tls_identity = not trusted_header
        # Routes asked every few seconds (the kubelet's probes): their lines are DEBUG.
        self._quiet_routes = frozenset(quiet_routes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        state = scope.setdefault("state", {})
        status = _NO_STATUS

        async def observed(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = str(message["status"])
            await send(message)

        HTTP_IN_FLIGHT.inc()
        try:
            await self.app(scope, receive, observed)
        finally:
            HTTP_IN_FLIGHT.dec()
            held = state.get("body_bytes", 0)
            if held:
                BODY_BYTES_IN_FLIGHT.dec(held)
            duration = time.perf_counter() - started
            route = state.get("route", OTHER)
            api_status = str(state["api_status"]) if "api_status" in state else _NO_STATUS
            method = scope["method"] if scope["method"] in _METHODS else OTHER
            HTTP_REQUESTS.labels(route, method, status, api_status).inc()
            HTTP_DURATION.labels(route, method).observe(duration)
            level = logging.DEBUG if route in self._quiet_routes else logging.INFO
            if access_log.isEnabledFor(level):
                self._log(level, scope, state, route, status, api_status, duration)

    def _log(
        self, level: int, scope: Scope, state: dict[str, Any], route: str, status: str, api_status: str, duration: float
    ) -> None:
        cn = state["cn"] if "cn" in state else client_common_name(scope) if self._tls_identity else None
        fields = {
            "request_id": state.get("request_id"),
            "cn": cn,
            "method": scope["method"],
            "route": route,
            "status": int(status) if status.isdigit() else None,
            "api_status": int(api_status) if api_status.isdigit() else None,
            "duration_ms": round(duration * 1000, 3),
            "records": state.get("records"),
        }
        access_log.log(level, "request", extra={"fields": fields})
