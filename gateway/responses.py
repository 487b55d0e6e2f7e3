"""The API's answers: the v1 envelope of results, of a stored PUT and of a refusal.

Shared by the /v1 tree (gateway/app.py), /ext/v1 (gateway/ext.py), the probes and the
console's files. Each is an ApiResponse, which tells the metrics its API status code.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from gateway import codings, routing
from gateway.metrics import note_api_status, note_records
from storecast.status import STATUS, ApiFailure, ApiStatus
from storecast.v1 import records_pb2

JSON = "application/json"
_CREATED = msgspec.json.encode({"status_code": ApiStatus.SUCCESS, "status_message": STATUS[ApiStatus.SUCCESS].message})


class ApiResponse(Response):
    """A JSON response in the API's envelope, which notes its API status code for the
    metrics and the access log (gateway/metrics.py) as it is sent."""

    def __init__(
        self, body: bytes, api_status: ApiStatus.ValueType, *, status_code: int = 200, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(body, status_code=status_code, headers=headers, media_type=JSON)
        self.api_status = api_status

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        note_api_status(scope, self.api_status)
        await super().__call__(scope, receive, send)


def error_response(failure: ApiFailure) -> Response:
    body = msgspec.json.encode({"status_code": failure.code, "status_message": failure.message})
    headers = {"Allow": failure.allow} if isinstance(failure, routing.MethodNotAllowed) else None
    if isinstance(failure, codings.UnsupportedCoding):
        headers = {"Accept-Encoding": codings.ACCEPTED}
    if failure.retry_after_s is not None:
        headers = {"Retry-After": str(failure.retry_after_s)}
    return ApiResponse(body, failure.code, status_code=failure.http_status, headers=headers)


def results_response(request: Request, records: records_pb2.Records) -> Response:
    note_records(request.scope, records.count)
    if records.HasField("next_from"):
        head = b'{"status_code":1001,"status_message":"partial response","next_from":%d,"results":' % records.next_from
        return ApiResponse(head + records.results_json + b"}", ApiStatus.PARTIAL_RESPONSE, status_code=206)
    head = b'{"status_code":1000,"status_message":"success","results":'
    return ApiResponse(head + records.results_json + b"}", ApiStatus.SUCCESS)


def created_response(request: Request, reply: records_pb2.PutReply) -> Response:
    note_records(request.scope, reply.stored)
    return ApiResponse(_CREATED, ApiStatus.SUCCESS, status_code=201)


def caller(cn: str | None) -> str:
    """The caller as a refusal's message names it."""
    return f"certificate {cn!r}" if cn else "a request without a client certificate"


async def answer(handle: Callable[[Request], Awaitable[Response]], scope: Scope, receive: Receive, send: Send) -> None:
    """Send `handle`'s response, or the error envelope of the ApiFailure it raised."""
    request = Request(scope, receive)
    try:
        response = await handle(request)
    except ApiFailure as failure:
        response = error_response(failure)
    await response(scope, receive, send)


def request_id_of(scope: Scope) -> str:
    request_id: str = scope["state"]["request_id"]
    return request_id
