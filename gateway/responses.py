"""The API's answers: the v1 envelope of results, of a stored PUT and of a refusal.

Shared by the /v1 tree (gateway/app.py), /ext/v1 (gateway/ext.py), the probes and the
console's files. Each is an ApiResponse, which tells the metrics its API status code.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable, Callable

import msgspec
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from gateway import codings, routing
from gateway.metrics import note_api_status, note_records
from storecast.status import STATUS, ApiFailure, ApiStatus
from storecast.v1 import query_pb2, records_pb2

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


class StreamedApiResponse(StreamingResponse):
    """ApiResponse's streamed form: its body sent piece by piece as it comes, chunked.

    However the sending ends (its client gone, or cancelled while it waited to
    send a piece), the body and its `source` are closed then, not whenever the
    garbage collector gets to them: closing the source cancels the gRPC call,
    and so the service's query.
    """

    def __init__(
        self,
        body: AsyncGenerator[bytes],
        api_status: ApiStatus.ValueType,
        *,
        status_code: int,
        source: AsyncGenerator[object],
    ) -> None:
        super().__init__(body, status_code=status_code, media_type=JSON)
        self.api_status = api_status
        self._body = body
        self._source = source

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        note_api_status(scope, self.api_status)
        try:
            await super().__call__(scope, receive, send)
        finally:
            await self._body.aclose()
            await self._source.aclose()


def _results_head(next_from: int | None) -> tuple[bytes, ApiStatus.ValueType, int]:
    """The envelope before `results`' array, its API status and its HTTP status."""
    if next_from is not None:
        head = b'{"status_code":1001,"status_message":"partial response","next_from":%d,"results":' % next_from
        return head, ApiStatus.PARTIAL_RESPONSE, 206
    return b'{"status_code":1000,"status_message":"success","results":', ApiStatus.SUCCESS, 200


def results_response(request: Request, records: records_pb2.Records) -> Response:
    note_records(request.scope, records.count)
    head, api_status, status_code = _results_head(records.next_from if records.HasField("next_from") else None)
    return ApiResponse(head + records.results_json + b"}", api_status, status_code=status_code)


async def streamed_results_response(request: Request, pieces: AsyncGenerator[query_pb2.JsonPiece]) -> Response:
    """results_response's answer from a stream of its pieces (StreamProductionJson), sent as they
    come; an answer that fits in its first piece is sent whole, as results_response sends it."""
    first = await anext(pieces)
    second = await anext(pieces)
    next_from = first.next_from if first.HasField("next_from") else None
    if not second.json:  # the count: the answer was the first piece
        async for _ in pieces:  # the call's OK status: nothing more comes, and nothing is cancelled
            pass
        records = records_pb2.Records(results_json=first.json, count=second.count, next_from=next_from)
        return results_response(request, records)
    head, api_status, status_code = _results_head(next_from)

    async def body() -> AsyncGenerator[bytes]:
        yield head + first.json
        yield second.json
        async for piece in pieces:
            if piece.json:
                yield piece.json
            if piece.HasField("count"):
                note_records(request.scope, piece.count)
        yield b"}"

    return StreamedApiResponse(body(), api_status, status_code=status_code, source=pieces)


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
