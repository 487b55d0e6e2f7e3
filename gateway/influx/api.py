"""The InfluxDB write APIs (docs/api/extensions.md, "Writing line protocol"), for Telegraf, Node-RED and
the official clients:

    POST /ext/influx/write?db=<site_id>[&precision=..]              1.x (`rp`, `u`, `p`, ... ignored)
    POST /ext/influx/api/v2/write?bucket=<site_id>[&precision=..]   2.x (`org` ignored)
    GET  /ext/influx/ping, /ext/influx/health                       what the clients ask to see a server is up

Influx's conventions, not the v1 envelope (docs/api/v1.md §10): 204 once every
record is stored; a refusal is `{"error": "..."}` (the 2.x path adds the 2.x
`code` and `message`, which its clients show) with 400 for a bad line, 401
without a client certificate, 403 when the certificate may not write the site,
404 for a db/bucket that is not a site id, 413 over STORECAST_MAX_BODY_BYTES (as
received or decoded), 415 for a Content-Encoding not served, and 429/503 with
Retry-After as /v1. Checked in that order: path, method, identity,
query string, permission (then the rate limit), body.

A body is all or nothing. Every line is parsed and checked against the catalog
(gateway/influx/mapping.py) before the first gRPC call, so a bad line stores
nothing. The records then go to the ingest service as one PutProduction
RecordBatch per equipment type, the calls concurrent; each is atomic and
durable. A system failure of one call (5xx) after another was stored leaves
those types stored: writes are idempotent (a record's key is its site, type,
id and timestamp, and a rewrite replaces it), so the client's retry of the
5xx, which Telegraf and the clients do, ends in the state a single atomic
write would have left.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from urllib.parse import parse_qs

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from gateway import codings, ext_routing
from gateway.admission import Admission
from gateway.backends import Backends
from gateway.gatekeeper import Gatekeeper
from gateway.influx.lines import LineError
from gateway.influx.mapping import DEFAULT_PRECISION, PRECISIONS, Write, to_batches
from gateway.metrics import note_records, note_route
from gateway.responses import JSON, request_id_of
from gateway.routing import parse_uint32
from storecast.status import ApiFailure
from storecast.v1 import catalog_pb2, ingest_pb2

log = logging.getLogger("storecast.gateway")

VERSION = "storecast"  # the X-Influxdb-Version a ping answers: clients log it, none compares it
# Influx 2.x's error codes, by HTTP status.
_V2_CODES = {
    400: "invalid",
    401: "unauthorized",
    403: "forbidden",
    404: "not found",
    405: "method not allowed",
    413: "request too large",
    415: "unsupported media type",
    429: "too many requests",
    503: "unavailable",
}
# The query parameter naming the site, by write path.
_SITE_PARAMETER = {ext_routing.INFLUX_WRITE_V1: "db", ext_routing.INFLUX_WRITE_V2: "bucket"}
_HEALTH = msgspec.json.encode({"name": "storecast", "message": "ready for writes", "status": "pass", "checks": []})


class InfluxError(Exception):
    def __init__(self, http_status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.http_status = http_status
        self.message = message
        self.headers = headers


class InfluxApi:
    def __init__(self, gatekeeper: Gatekeeper, admission: Admission, read_body: Callable[[Request], Awaitable[bytes]]) -> None:
        self._gatekeeper = gatekeeper
        self._admission = admission
        # The body of a write, as /v1 reads it (gateway/bodies.py): size limit, in-flight budget, and
        # the content codings of docs/api/v1.md §10 (Telegraf's outputs.influxdb_v2 sends gzip).
        self._read_body = read_body
        # Set by the app's lifespan: gRPC aio channels belong to the serving event loop.
        self.backends: Backends

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope["path"]
        try:
            try:
                response = await self.handle(Request(scope, receive), path)
            except InfluxError as error:
                response = error_response(path, error)
            except ApiFailure as failure:
                response = error_response(path, InfluxError(failure.http_status, failure.message, _headers(failure)))
            await response(scope, receive, send)
        finally:
            # The body bytes a write was admitted with, held until its answer is sent.
            self._admission.release(scope)

    async def handle(self, request: Request, path: str) -> Response:
        if path not in ext_routing.INFLUX_ROUTES:
            raise InfluxError(404, "no /ext/influx endpoint has this path")
        note_route(request.scope, path)
        if path in _SITE_PARAMETER:
            if request.method != "POST":
                raise InfluxError(405, f"{request.method} is not allowed; use POST", {"Allow": "POST"})
            return await self.write(request, path)
        if request.method not in ("GET", "HEAD"):
            raise InfluxError(405, f"{request.method} is not allowed; use GET", {"Allow": "GET, HEAD"})
        # Like /livez, without a client certificate: they say the gateway answers, nothing more.
        if path == ext_routing.INFLUX_PING:
            return Response(status_code=204, headers={"X-Influxdb-Version": VERSION, "X-Influxdb-Build": "OSS"})
        return Response(_HEALTH, media_type=JSON)

    async def write(self, request: Request, path: str) -> Response:
        received_ms = time.time_ns() // 1_000_000
        cn = self._gatekeeper.identify(request)
        if cn is None:
            raise InfluxError(401, "a client certificate is required")
        query = parse_qs(request.scope["query_string"].decode("latin-1"), keep_blank_values=True)
        name = _SITE_PARAMETER[path]
        site_text = query.get(name, [""])[-1]
        if not site_text:
            raise InfluxError(400, f"{name} is required: the site id")
        site_id = parse_uint32(site_text)
        if site_id is None:
            raise InfluxError(404, f"{name} not found: {site_text!r} is not a site id (an unsigned 32-bit integer)")
        precision = query.get("precision", [""])[-1] or DEFAULT_PRECISION
        if precision not in PRECISIONS:
            raise InfluxError(400, f"precision must be one of {', '.join(PRECISIONS)}; got {precision!r}")
        self._gatekeeper.authorize(request, site_id, "write")
        body = await self._read_body(request)
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as error:
            raise InfluxError(400, f"the body is not UTF-8 (byte {error.start})") from None
        try:
            # Off the event loop: a large body takes a while to parse.
            write = await asyncio.to_thread(to_batches, text, precision, received_ms)
        except LineError as error:
            # InfluxDB 1.x's words, which Telegraf's outputs.influxdb reads as "drop this batch, do not retry".
            raise InfluxError(400, f"unable to parse {error}") from None
        if not write.batches:
            raise InfluxError(400, "writing requires points")
        await self._store(request, site_id, write)
        note_records(request.scope, write.records)
        return Response(status_code=204)

    async def _store(self, request: Request, site_id: int, write: Write) -> None:
        """One PutProduction per equipment type, all run to their end; the first failure is the answer."""
        backends, request_id = self.backends, request_id_of(request.scope)
        # A small write shares a call with the PUTs and writes arriving with it (gateway/shared_calls.py).
        calls = [
            backends.production_puts.call(
                ingest_pb2.PutProductionRequest(
                    site_id=site_id, equipment_type=catalog_pb2.EquipmentType.ValueType(equipment.enum_value), batch=batch
                ),
                request_id,
            )
            for equipment, batch in write.batches
        ]
        outcomes = await asyncio.gather(*calls, return_exceptions=True)
        failures = [outcome for outcome in outcomes if isinstance(outcome, BaseException)]
        if not failures:
            return
        if len(failures) < len(outcomes):
            stored = [name for name, outcome in zip(write.type_names, outcomes) if not isinstance(outcome, BaseException)]
            log.warning("request_id=%s influx write partly stored (%s); the client's retry rewrites them", request_id, stored)
        raise failures[0]


def error_response(path: str, error: InfluxError) -> Response:
    content: dict[str, str] = {"error": error.message}
    if path == ext_routing.INFLUX_WRITE_V2:
        content |= {"code": _V2_CODES.get(error.http_status, "internal error"), "message": error.message}
    return Response(msgspec.json.encode(content), status_code=error.http_status, headers=error.headers, media_type=JSON)


def _headers(failure: ApiFailure) -> dict[str, str] | None:
    """A refusal for load (429, 503) keeps its Retry-After: Telegraf and the clients wait that long;
    a coding not served (415) its Accept-Encoding, the codings that are."""
    if isinstance(failure, codings.UnsupportedCoding):
        return {"Accept-Encoding": codings.ACCEPTED}
    return {"Retry-After": str(failure.retry_after_s)} if failure.retry_after_s is not None else None
