"""The Prometheus HTTP query API under /ext/prom/ (docs/api/prometheus.md), for Grafana, promtool and
Prometheus's client libraries:

    GET|POST /ext/prom/api/v1/query                   query, time
    GET|POST /ext/prom/api/v1/query_range             query, start, end, step
    GET|POST /ext/prom/api/v1/series                  match[], start, end, limit
    GET|POST /ext/prom/api/v1/labels                  match[], start, end, limit
    GET      /ext/prom/api/v1/label/<name>/values     match[], start, end, limit
    GET      /ext/prom/api/v1/metadata                metric, limit
    GET      /ext/prom/api/v1/status/buildinfo
    GET      /ext/prom/api/v1/rules                   no rules: an empty list of groups
    GET|POST /ext/prom/api/v1/query_exemplars         no exemplars: an empty list

Prometheus's answers, not the v1 envelope: `{"status":"success","data":...}`, and
`{"status":"error","errorType":...,"error":...}` with 400 (`bad_data`), 422
(`execution`), 401 without a client certificate, 403 when the certificate may
read no site, 404, 405, 429/503 with Retry-After. Parameters come from the query
string and, for a POST, from a form-encoded body (the body's first). The
gateway only reads them and calls the query service (PromQuery, PromSeries);
the certificate's readable sites go with each call, so a series of any other
site is not seen at all: absent from every answer, not an error.
"""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from gateway import codings, ext_routing
from gateway.admission import Admission
from gateway.backends import Backends
from gateway.gatekeeper import Gatekeeper
from gateway.metrics import note_route
from gateway.prom import wire
from gateway.prom.wire import BadParameter
from gateway.responses import JSON, caller, request_id_of
from storecast.prom import METRICS
from storecast.status import ApiFailure
from storecast.v1 import query_pb2

Params = dict[str, list[str]]
Handler = Callable[[Request, Params, query_pb2.SiteScope], Awaitable[bytes]]

# What status/buildinfo says: the Prometheus version whose API and PromQL semantics these follow.
BUILD_INFO = {
    "version": "3.0.0",
    "revision": "storecast",
    "branch": "storecast",
    "buildUser": "storecast",
    "buildDate": "",
    "goVersion": "",
}
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_FORM = "application/x-www-form-urlencoded"
# Error types by HTTP status, as Prometheus's API names them (401 and 403 are storecast's own).
_ERROR_TYPES = {400: "bad_data", 401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "bad_data", 422: "execution"}


class PromError(Exception):
    def __init__(self, http_status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.http_status = http_status
        self.message = message
        self.headers = headers


@dataclass(frozen=True, slots=True)
class _Endpoint:
    handler: Handler
    methods: tuple[str, ...]
    reads_sites: bool = True  # False: no site's data (metadata, buildinfo, rules, exemplars)


class PromApi:
    def __init__(self, gatekeeper: Gatekeeper, admission: Admission, read_body: Callable[[Request], Awaitable[bytes]]) -> None:
        self._gatekeeper = gatekeeper
        self._admission = admission
        self._read_body = read_body
        # Set by the app's lifespan: gRPC aio channels belong to the serving event loop.
        self.backends: Backends
        both, get = ("GET", "POST"), ("GET",)
        self._endpoints = {
            ext_routing.PROM_QUERY: _Endpoint(self.query, both),
            ext_routing.PROM_QUERY_RANGE: _Endpoint(self.query_range, both),
            ext_routing.PROM_SERIES: _Endpoint(self.series, both),
            ext_routing.PROM_LABELS: _Endpoint(self.labels, both),
            ext_routing.PROM_LABEL_VALUES: _Endpoint(self.label_values, get),
            ext_routing.PROM_METADATA: _Endpoint(self.metadata, get, reads_sites=False),
            ext_routing.PROM_BUILDINFO: _Endpoint(self.buildinfo, get, reads_sites=False),
            ext_routing.PROM_RULES: _Endpoint(self.rules, get, reads_sites=False),
            ext_routing.PROM_EXEMPLARS: _Endpoint(self.exemplars, both, reads_sites=False),
        }
        self._metadata = wire.success({name: _metadata_of(name) for name in sorted(METRICS)})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            try:
                response = await self.handle(Request(scope, receive))
            except BadParameter as bad:
                raise PromError(400, str(bad)) from None
            except ApiFailure as failure:
                raise PromError(failure.http_status, failure.message, _headers(failure)) from None
        except PromError as refusal:
            error_type = _ERROR_TYPES.get(refusal.http_status, "unavailable" if refusal.http_status in (429, 503) else "internal")
            response = Response(
                wire.error(error_type, refusal.message), refusal.http_status, headers=refusal.headers, media_type=JSON
            )
        try:
            await response(scope, receive, send)
        finally:
            # The body bytes a POST was admitted with, held until its answer is sent.
            self._admission.release(scope)

    async def handle(self, request: Request) -> Response:
        path = request.scope["path"]
        route, name = ext_routing.prom_route(path)
        endpoint = self._endpoints.get(route) if route is not None else None
        if route is None or endpoint is None:
            raise PromError(404, "no /ext/prom endpoint has this path")
        note_route(request.scope, route)
        method = "GET" if request.method == "HEAD" else request.method
        if method not in endpoint.methods:
            allowed = ", ".join(endpoint.methods)
            raise PromError(405, f"{request.method} is not allowed; use {allowed}", {"Allow": allowed})
        cn = self._gatekeeper.identify(request)
        if cn is None:
            raise PromError(401, "a client certificate is required")
        sites = self._gatekeeper.permissions.readable_sites(cn)
        if endpoint.reads_sites and sites is None:
            raise PromError(403, f"{caller(cn)} may not read any site")
        if not self._gatekeeper.permissions.knows(cn):
            raise PromError(403, f"{caller(cn)} is granted no access")
        self._gatekeeper.admit(cn)
        params = await self._params(request)
        if name is not None:
            params["__label__"] = [name]
        scope = query_pb2.SiteScope(every_site=sites == "*", site_ids=[] if sites is None or sites == "*" else sorted(sites))
        return Response(await endpoint.handler(request, params, scope), media_type=JSON)

    async def _params(self, request: Request) -> Params:
        """The query string's parameters and, for a form-encoded POST, the body's (first, as Go's r.Form)."""
        query = _parsed(request.scope["query_string"])
        if request.method != "POST":
            return query
        body = await self._read_body(request)
        if request.headers.get("content-type", "").split(";")[0].strip().lower() != _FORM:
            return query
        form = _parsed(body)
        for key, values in query.items():
            form.setdefault(key, []).extend(values)
        return form

    async def _call_query(self, request: Request, call: query_pb2.PromQueryRequest) -> bytes:
        backends = self.backends
        reply = await backends.call(backends.query.PromQuery, call, request_id_of(request.scope))
        return wire.success(wire.query_data(reply))

    async def query(self, request: Request, params: Params, sites: query_pb2.SiteScope) -> bytes:
        text = _required(params, "query")
        moment = _last(params, "time")
        at = wire.parse_time("time", moment) if moment else time.time_ns() // 1_000_000
        return await self._call_query(request, query_pb2.PromQueryRequest(query=text, start_ms=at, end_ms=at, sites=sites))

    async def query_range(self, request: Request, params: Params, sites: query_pb2.SiteScope) -> bytes:
        text = _required(params, "query")
        start = wire.parse_time("start", _last(params, "start"))
        end = wire.parse_time("end", _last(params, "end"))
        if end < start:
            raise PromError(400, "end timestamp must not be before start time")
        step = wire.parse_duration("step", _last(params, "step"))
        if step <= 0:
            raise PromError(400, "zero or negative query resolution step widths are not accepted. Try a positive integer")
        call = query_pb2.PromQueryRequest(query=text, start_ms=start, end_ms=end, step_ms=step, sites=sites)
        return await self._call_query(request, call)

    async def _series(self, request: Request, params: Params, sites: query_pb2.SiteScope) -> list[dict[str, str]]:
        call = query_pb2.PromSeriesRequest(match=params.get("match[]", []), sites=sites, limit=_limit(params))
        start, end = _last(params, "start"), _last(params, "end")
        if start:
            call.start_ms = wire.parse_time("start", start)
        if end:
            call.end_ms = wire.parse_time("end", end)
        backends = self.backends
        reply = await backends.call(backends.query.PromSeries, call, request_id_of(request.scope))
        return [{label.name: label.value for label in series.labels} for series in reply.series]

    async def series(self, request: Request, params: Params, sites: query_pb2.SiteScope) -> bytes:
        if not params.get("match[]"):
            raise PromError(400, "no match[] parameter provided")
        return wire.success(await self._series(request, params, sites))

    async def labels(self, request: Request, params: Params, sites: query_pb2.SiteScope) -> bytes:
        names = sorted({name for series in await self._series(request, _unlimited(params), sites) for name in series})
        return wire.success(_cut(names, params))

    async def label_values(self, request: Request, params: Params, sites: query_pb2.SiteScope) -> bytes:
        name = params["__label__"][0]
        if not _LABEL_NAME.fullmatch(name):
            raise PromError(400, f"invalid label name: {name!r}")
        found = await self._series(request, _unlimited(params), sites)
        values = sorted({series[name] for series in found if name in series})
        return wire.success(_cut(values, params))

    async def metadata(self, request: Request, params: Params, sites: query_pb2.SiteScope) -> bytes:
        """Every metric's, or `metric`'s alone; at most `limit` metrics (negative: no limit), as Prometheus."""
        metric = _last(params, "metric")
        limit_text = _last(params, "limit")
        if not metric and not limit_text:
            return self._metadata
        try:
            limit = int(limit_text) if limit_text else -1
        except ValueError:
            raise PromError(400, "limit must be a number") from None
        names = [metric] if metric in METRICS else [] if metric else sorted(METRICS)
        return wire.success({name: _metadata_of(name) for name in (names if limit < 0 else names[:limit])})

    async def buildinfo(self, request: Request, params: Params, sites: query_pb2.SiteScope) -> bytes:
        return wire.success(BUILD_INFO)

    async def rules(self, request: Request, params: Params, sites: query_pb2.SiteScope) -> bytes:
        return wire.success({"groups": []})

    async def exemplars(self, request: Request, params: Params, sites: query_pb2.SiteScope) -> bytes:
        return wire.success([])


def _parsed(raw: bytes) -> Params:
    return parse_qs(raw.decode("latin-1"), keep_blank_values=True, encoding="utf-8", errors="replace")


def _last(params: Params, name: str) -> str:
    return params.get(name, [""])[0]


def _required(params: Params, name: str) -> str:
    value = _last(params, name)
    if not value:
        raise PromError(400, f'invalid parameter "{name}": parameter is missing')
    return value


def _metadata_of(name: str) -> list[dict[str, str]]:
    metric = METRICS[name]
    return [{"type": "gauge", "help": metric.help, "unit": metric.attribute.unit.strip("-")}]


def _limit(params: Params) -> int:
    text = _last(params, "limit")
    if not text:
        return 0
    if not text.isdigit():
        raise PromError(400, f'invalid parameter "limit": cannot parse "{text}" to a valid limit')
    return min(int(text), 2**32 - 1)


def _unlimited(params: Params) -> Params:
    """The series behind a listing of names or values: the limit cuts the listing, not them."""
    return {key: values for key, values in params.items() if key != "limit"}


def _cut(items: list[str], params: Params) -> list[str]:
    limit = _limit(params)
    return items[:limit] if limit else items


def _headers(failure: ApiFailure) -> dict[str, str] | None:
    if isinstance(failure, codings.UnsupportedCoding):
        return {"Accept-Encoding": codings.ACCEPTED}
    return {"Retry-After": str(failure.retry_after_s)} if failure.retry_after_s is not None else None
