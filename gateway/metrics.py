"""The gateway's Prometheus metrics and its access log: one observation per request.

Requests are counted by route template (`/v1/{site_id}/production/{type}/{id}`,
`/ext/v1/{site_id}/inventory`),
never by their path, so the label values are a short fixed list whatever
clients send. The API status code is read from the first bytes of the
response body: every API response, success or error, begins with
`{"status_code":NNNN`, and reading it there catches every path that answers
(routing, handlers, the 1500 of an escaped error) without any of them
reporting it.

In `serve all` the gateway runs in worker processes; these metrics are then
written in prometheus-client's multiprocess mode and served, summed over the
workers, by the parent (storecast/metrics.py).
"""

from __future__ import annotations

import logging
import time
from typing import Any
from urllib.parse import unquote

from prometheus_client import Counter, Gauge, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway import ext_routing
from gateway.health import PATHS as PROBE_PATHS
from gateway.routing import TYPED_CATEGORIES, UNTYPED_CATEGORIES
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
    "Bytes of PUT bodies read and held by requests not yet answered.",
    multiprocess_mode="livesum",
)

# Paths that are their own route: the OpenAPI document and the probes (gateway/health.py).
FIXED_ROUTES = {path.encode(): path for path in ("/openapi.json", *PROBE_PATHS)}
OTHER = "other"  # any path outside the API: one label value for all of them
# Probes come every few seconds from the kubelet: their lines are DEBUG.
_QUIET_ROUTES = frozenset(PROBE_PATHS)
_METHODS = frozenset({"GET", "HEAD", "PUT"})
_ENVELOPE = b'{"status_code":'
_NO_STATUS = "none"

access_log = logging.getLogger("storecast.access")


def route_template(raw_path: bytes) -> str:
    """The route a path is of, with its variable segments named: a bounded label value.

    The shape is what counts, as in routing.resolve's first step: a known
    category with the number of segments one of its endpoints has. Whether
    the site, type or id are valid is the request's status, not its route.
    """
    fixed = FIXED_ROUTES.get(raw_path)
    if fixed is not None:
        return fixed
    if raw_path.startswith(ext_routing.PREFIX.encode()):
        ext = ext_routing.match(raw_path)
        return OTHER if ext is None else ext.route
    segments = raw_path.decode("latin-1").split("/")
    if segments[:2] != ["", "v1"] or not 4 <= len(segments) <= 6 or "" in segments[2:]:
        return OTHER
    category, after = unquote(segments[3]), len(segments) - 4
    if category in TYPED_CATEGORIES and after in (1, 2):
        return f"/v1/{{site_id}}/{category}/{{type}}" + ("/{id}" if after == 2 else "")
    if category in UNTYPED_CATEGORIES and after in (0, 1):
        return f"/v1/{{site_id}}/{category}" + ("/{id}" if after == 1 else "")
    return OTHER


def api_status_of(body: bytes) -> str:
    """The API status code a response body begins with, or "none"."""
    if body.startswith(_ENVELOPE):
        code = body[len(_ENVELOPE) : len(_ENVELOPE) + 4]
        if code.isdigit():
            return code.decode()
    return _NO_STATUS


def hold_body_bytes(state: dict[str, Any], size: int) -> None:
    """Count `size` bytes of a body as held until the request is answered (ObserveMiddleware releases them)."""
    BODY_BYTES_IN_FLIGHT.inc(size)
    state["body_bytes"] = state.get("body_bytes", 0) + size


def note_records(scope: Scope, records: int) -> None:
    """The records a request stored or read, for its access log line."""
    scope["state"]["records"] = records


class ObserveMiddleware:
    """Counts and times every HTTP request, and logs it as one JSON line.

    Outermost, so that it sees the final answer: the request id and the CN
    are read from the request state the inner layers fill in (RequestIdMiddleware,
    V1Api); a request refused before its identity was read (404, 405) is
    logged with the CN of its TLS certificate, or none behind an ingress.
    """

    def __init__(self, app: ASGIApp, *, trusted_header: bool) -> None:
        self.app = app
        self._tls_identity = not trusted_header

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        state = scope.setdefault("state", {})
        status, api_status, body_seen = _NO_STATUS, _NO_STATUS, False

        async def observed(message: Message) -> None:
            nonlocal status, api_status, body_seen
            if message["type"] == "http.response.start":
                status = str(message["status"])
            elif message["type"] == "http.response.body" and not body_seen:
                body_seen = True
                api_status = api_status_of(message.get("body", b""))
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
            route = route_template(scope.get("raw_path") or scope["path"].encode())
            method = scope["method"] if scope["method"] in _METHODS else OTHER
            HTTP_REQUESTS.labels(route, method, status, api_status).inc()
            HTTP_DURATION.labels(route, method).observe(duration)
            level = logging.DEBUG if route in _QUIET_ROUTES else logging.INFO
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
