"""The v1 REST/JSON API: each request is routed, authorized and translated into one gRPC call.

Every error path ends in `error_response`; every response carries X-Request-Id.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Router
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway import console, ext_routing, health, openapi, params, reads, routing
from gateway.admission import Admission
from gateway.backends import Backends
from gateway.bodies import BodyReader, IncomingBody
from gateway.codings import EncodeResponses
from gateway.config import GatewaySettings
from gateway.ext import ExtApi
from gateway.gatekeeper import Gatekeeper
from gateway.health import Probes
from gateway.influx.api import InfluxApi
from gateway.metrics import ObserveMiddleware, note_route
from gateway.permissions import Access, Permissions
from gateway.prom.api import PromApi
from gateway.responses import (
    JSON,
    answer,
    created_response,
    error_response,
    request_id_of,
)
from gateway.tracing import traced
from storecast.aggregations import V1_AGGREGATIONS
from storecast.status import ApiFailure, ApiStatus
from storecast.v1 import ingest_pb2, vector_pb2

log = logging.getLogger("storecast.gateway")


# A production PUT body at least this large (its Content-Length), coded or chunked goes to the
# ingest service piece by piece as it arrives (PutProductionStream): the gateway holds a piece,
# not the body, its message's copy and the serialized call. A smaller one goes whole, and shares
# its call with the small PUTs that arrive with it (gateway/shared_calls.py).
STREAMED_PUT_BYTES = 4 * 1024 * 1024


class V1Api:
    """The /v1 tree: docs/api/v1.md §3 order, then the category's handler."""

    def __init__(self, settings: GatewaySettings, gatekeeper: Gatekeeper, admission: Admission) -> None:
        self._gatekeeper = gatekeeper
        self._admission = admission
        self._bodies = BodyReader.of(settings, admission)
        # Set by the app's lifespan: gRPC aio channels belong to the serving event loop.
        self.backends: Backends
        self._handlers: dict[tuple[str, str], Callable[[Request, routing.Target], Awaitable[Response]]] = {
            ("production", "GET"): self.get,
            ("production", "PUT"): self.put_production,
            ("forecast", "GET"): self.get,
            ("forecast", "PUT"): self.put_forecast,
            ("commitment", "GET"): self.get,
            ("commitment", "PUT"): self.put_commitment,
            ("tariff", "GET"): self.get,
            ("tariff", "PUT"): self.put_tariff,
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await answer(self.handle, scope, receive, send)
        finally:
            # The body bytes a PUT was admitted with, held until its answer is sent.
            self._admission.release(scope)

    async def handle(self, request: Request) -> Response:
        shape = routing.shape(request.scope.get("raw_path") or request.scope["path"].encode())
        if shape.route is not None:
            note_route(request.scope, shape.route)
        endpoint = routing.resolve(request.method, shape)
        access: Access = "read" if endpoint.method == "GET" else "write"
        self._gatekeeper.authorize(request, endpoint.site_id, access)
        target = routing.check_target(endpoint)
        handler = self._handlers.get((target.category, target.method))
        if handler is None:
            raise ApiFailure(ApiStatus.SERVER_ERROR)
        return await handler(request, target)

    async def read_json_body(self, request: Request) -> bytes:
        """The body of a PUT, read whole."""
        return await self.json_body(request).read()

    def json_body(self, request: Request) -> IncomingBody:
        """The body of a PUT, admitted: no query string, JSON content type, then as gateway/bodies.py admits any body."""
        params.parse(request.scope["query_string"], (), "a PUT")
        media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if media_type != JSON:
            raise ApiFailure(ApiStatus.INVALID_HEADER, f"Content-Type must be {JSON}, got {media_type or 'none'!r}")
        return self._bodies.admit(request)

    async def get(self, request: Request, target: routing.Target) -> Response:
        return await reads.read(self.backends, request, target, V1_AGGREGATIONS)

    async def put_production(self, request: Request, target: routing.Target) -> Response:
        body = self.json_body(request)
        equipment_type = reads.equipment_type(target)
        if body.declared_size is None or body.coded or body.declared_size >= STREAMED_PUT_BYTES:
            # Sent on piece by piece as it arrives: no copy of it is held here.
            first = ingest_pb2.PutProductionPiece(site_id=target.site_id, equipment_type=equipment_type)
            reply = await self.backends.put_production_stream(first, body.pieces(), request_id_of(request.scope))
            return created_response(request, reply)
        # No name holds the body once the message has its copy: one copy less per PUT in flight.
        call = ingest_pb2.PutProductionRequest(site_id=target.site_id, equipment_type=equipment_type, v1_json=await body.read())
        reply = await self.backends.production_puts.call(call, request_id_of(request.scope))
        return created_response(request, reply)

    async def put_forecast(self, request: Request, target: routing.Target) -> Response:
        call = vector_pb2.PutForecastRequest(
            site_id=target.site_id, forecast_type=reads.forecast_type(target), v1_json=await self.read_json_body(request)
        )
        reply = await self.backends.call(self.backends.vector.PutForecast, call, request_id_of(request.scope))
        return created_response(request, reply)

    async def put_commitment(self, request: Request, target: routing.Target) -> Response:
        call = vector_pb2.PutCommitmentRequest(site_id=target.site_id, v1_json=await self.read_json_body(request))
        reply = await self.backends.call(self.backends.vector.PutCommitment, call, request_id_of(request.scope))
        return created_response(request, reply)

    async def put_tariff(self, request: Request, target: routing.Target) -> Response:
        call = vector_pb2.PutTariffRequest(site_id=target.site_id, v1_json=await self.read_json_body(request))
        reply = await self.backends.call(self.backends.vector.PutTariff, call, request_id_of(request.scope))
        return created_response(request, reply)


class RequestIdMiddleware:
    """Gives every request an id, returns it as X-Request-Id, and turns any escaped error into 1500."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        header = (b"x-request-id", request_id.encode())
        started = False

        async def send_with_id(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                message["headers"] = [*message.get("headers", []), header]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            log.exception("request_id=%s unexpected error", request_id)
            if not started:
                await error_response(ApiFailure(ApiStatus.SERVER_ERROR))(scope, receive, send_with_id)


class Dispatch:
    """GET /openapi.json to the document, /ext/v1/... to the extensions (gateway/ext.py),
    /ext/influx/... to the InfluxDB write APIs (gateway/influx/api.py), /ext/prom/... to the
    Prometheus query API (gateway/prom/api.py), /console/... to the
    web console's files (gateway/console), every other request to the v1 tree.

    The path is compared, not matched with Starlette's routes: their patterns
    use `.`, which does not match a newline, so a path holding %0A matched no
    route and got Starlette's plain-text 404 instead of the API's JSON.

    The document is built once. No client certificate is asked for: it
    describes the public contract and holds no site's data, and a client needs
    it before it has been granted any site. Other methods on its path go to the
    v1 tree, which answers 404 (1101) as for any path outside it.
    """

    def __init__(self, api: V1Api, ext: ASGIApp, influx: ASGIApp, prom: ASGIApp, web_console: console.Console) -> None:
        self._api = api
        self._ext = ext
        self._influx = influx
        self._prom = prom
        self._console = web_console
        self._document = Response(msgspec.json.encode(openapi.build_document()), media_type=JSON)
        # Set by the app's lifespan, with the backends it asks.
        self.probes: Probes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["path"] == "/openapi.json" and scope["method"] in ("GET", "HEAD"):
            note_route(scope, scope["path"])
            await self._document(scope, receive, send)
        elif scope["path"] in health.PATHS and scope["method"] in ("GET", "HEAD"):
            # Like the document, without a client certificate (gateway/health.py).
            note_route(scope, scope["path"])
            await self.probes(scope, receive, send)
        elif scope["path"].startswith(ext_routing.PREFIX):
            await self._ext(scope, receive, send)
        elif scope["path"].startswith(ext_routing.INFLUX_PREFIX):
            await self._influx(scope, receive, send)
        elif scope["path"].startswith(ext_routing.PROM_PREFIX):
            await self._prom(scope, receive, send)
        elif console.serves(scope["path"]):
            await answer(self._console.handle, scope, receive, send)
        else:
            await self._api(scope, receive, send)


def create_app(settings: GatewaySettings) -> ASGIApp:
    permissions = Permissions.load(settings.permissions)
    admission = Admission.from_env()
    gatekeeper = Gatekeeper(settings, permissions, admission)
    api = V1Api(settings, gatekeeper, admission)
    ext = ExtApi(gatekeeper)
    influx = InfluxApi(gatekeeper, admission, BodyReader.of(settings, admission).read)
    prom = PromApi(gatekeeper, admission, BodyReader.of(settings, admission).read)
    # A bare Router, not a Starlette app: the app's ServerErrorMiddleware would
    # answer an escaped exception in plain text before RequestIdMiddleware
    # could answer it in JSON (1500).
    dispatch = Dispatch(api, ext, influx, prom, console.Console(settings, permissions))

    @asynccontextmanager
    async def lifespan(app: Router) -> AsyncIterator[None]:
        backends = Backends(settings)
        api.backends = ext.backends = influx.backends = prom.backends = backends
        dispatch.probes = Probes(settings, backends)
        yield
        await backends.close()

    router = Router(default=dispatch, lifespan=lifespan, redirect_slashes=False)
    # Outermost: the metrics and the access log see every answer, the 1500s included.
    # Tracing (off unless STORECAST_OTLP_ENDPOINT): a span around each request, the gRPC calls its children.
    # Innermost, the content codings of every path's answers (RequestIdMiddleware's own 1500 is too small to encode).
    return ObserveMiddleware(
        traced(RequestIdMiddleware(EncodeResponses(router))),
        trusted_header=settings.trusted_cert_header is not None,
        quiet_routes=health.PATHS,
    )
