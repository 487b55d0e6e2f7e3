"""The gateway's server span per HTTP request, when tracing is on (storecast/tracing.py).

Named by method and route template (`PUT /v1/{site_id}/production/{type}/{id}`),
as the metrics label requests, never by path: the span is named by its method
when it starts and by the route its router noted (gateway/metrics.py) once the
request is answered. It sits outside RequestIdMiddleware, so the gRPC calls
made inside are its children, and it reads the request id that middleware
assigned once the request is answered.
"""

from __future__ import annotations

from opentelemetry.trace import SpanKind, Status, StatusCode
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.metrics import OTHER
from storecast import tracing


def traced(app: ASGIApp) -> ASGIApp:
    """`app` inside a TracingMiddleware when tracing is on; `app` itself when off."""
    return TracingMiddleware(app) if tracing.enabled() else app


class TracingMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method = scope["method"]
        attributes = {"http.request.method": method, "url.scheme": scope.get("scheme", "https")}
        with tracing.tracer().start_as_current_span(method, kind=SpanKind.SERVER, attributes=attributes) as span:

            async def traced_send(message: Message) -> None:
                if message["type"] == "http.response.start":
                    status = int(message["status"])
                    span.set_attribute("http.response.status_code", status)
                    if status >= 500:
                        span.set_status(Status(StatusCode.ERROR))
                await send(message)

            try:
                await self.app(scope, receive, traced_send)
            finally:
                state = scope.get("state", {})
                route = state.get("route", OTHER)
                span.update_name(f"{method} {route}")
                span.set_attribute("http.route", route)
                request_id = state.get("request_id")
                if request_id is not None:
                    span.set_attribute(tracing.REQUEST_ID_ATTRIBUTE, request_id)
