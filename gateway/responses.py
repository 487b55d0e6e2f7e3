"""The API's answers: the v1 envelope of results, of a stored PUT and of a refusal.

Shared by the /v1 tree (gateway/app.py), /ext/v1 (gateway/ext.py) and the console's files.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from gateway import routing
from gateway.metrics import note_records
from storecast.status import STATUS, ApiFailure, ApiStatus
from storecast.v1 import records_pb2

JSON = "application/json"
_CREATED = msgspec.json.encode({"status_code": ApiStatus.SUCCESS, "status_message": STATUS[ApiStatus.SUCCESS].message})


def error_response(failure: ApiFailure) -> Response:
    body = msgspec.json.encode({"status_code": failure.code, "status_message": failure.message})
    headers = {"Allow": failure.allow} if isinstance(failure, routing.MethodNotAllowed) else None
    if failure.retry_after_s is not None:
        headers = {"Retry-After": str(failure.retry_after_s)}
    return Response(body, status_code=failure.http_status, headers=headers, media_type=JSON)


def results_response(request: Request, records: records_pb2.Records) -> Response:
    note_records(request.scope, records.count)
    if records.HasField("next_from"):
        head = b'{"status_code":1001,"status_message":"partial response","next_from":%d,"results":' % records.next_from
        return Response(head + records.results_json + b"}", status_code=206, media_type=JSON)
    head = b'{"status_code":1000,"status_message":"success","results":'
    return Response(head + records.results_json + b"}", status_code=200, media_type=JSON)


def created_response(request: Request, reply: records_pb2.PutReply) -> Response:
    note_records(request.scope, reply.stored)
    return Response(_CREATED, status_code=201, media_type=JSON)


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
