"""A request's body, read once the request may send it: for every path that takes one (/v1's PUTs, /ext/influx's writes).

- Its Content-Encoding is decoded (gateway/codings.py; 415/1103 for a coding not
  served, 400/1301 for a body that does not decode).
- The size limit (`STORECAST_MAX_BODY_BYTES`, 413/1303) bounds the bytes received
  and the bytes decoded: a declared Content-Length over it is refused before any
  of the body is read, and a bomb (a few KiB coding much more) is stopped as its
  decoded bytes pass the limit, having held about the limit in memory.
- The in-flight budget (gateway/admission.py) is charged the bytes received: the
  declared Content-Length before any of the body is read, a chunked body as its
  chunks arrive.
- A body that does not arrive within `STORECAST_BODY_TIMEOUT_S` is 400/1303.

A body is read whole (`read`), or piece by piece as it arrives (`pieces`: a large
production PUT's, which the gateway sends on to the service as it comes).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

from starlette.requests import Request

from gateway import codings
from gateway.admission import Admission
from gateway.config import GatewaySettings
from gateway.metrics import hold_body_bytes
from storecast.status import ApiFailure, ApiStatus


@dataclass(frozen=True, slots=True)
class BodyReader:
    limit: int
    timeout_s: float
    admission: Admission

    @classmethod
    def of(cls, settings: GatewaySettings, admission: Admission) -> BodyReader:
        return cls(settings.max_body_bytes, settings.body_timeout_s, admission)

    async def read(self, request: Request) -> bytes:
        """The body, decoded; the Content-Encoding is checked before the size and the budget."""
        return await self.admit(request).read()

    def admit(self, request: Request) -> IncomingBody:
        """The body, not yet read: its Content-Encoding, then its declared size, then the budget checked."""
        decoder = codings.decoder(request.headers.getlist("content-encoding"))
        declared = request.headers.get("content-length", "")
        declared_size = int(declared) if declared.isdigit() else None
        if declared_size is not None and declared_size > self.limit:
            raise self.too_large("")
        # Over the in-flight budget: 503 before any of the body is read.
        if declared_size is not None:
            self.admission.charge(request.scope, declared_size)
        return IncomingBody(self, request, decoder, declared_size)

    def too_large(self, how: str) -> ApiFailure:
        return ApiFailure(ApiStatus.PAYLOAD_CONTENT_ERROR, f"the body is larger than {self.limit} bytes{how}", http_status=413)


@dataclass(frozen=True, slots=True)
class IncomingBody:
    """An admitted request's body, read and decoded as it arrives."""

    reader: BodyReader
    request: Request
    decoder: codings.BodyDecoder
    # The Content-Length; None for a chunked body.
    declared_size: int | None

    async def read(self) -> bytes:
        return b"".join([piece async for piece in self.pieces()])

    @property
    def coded(self) -> bool:
        return not isinstance(self.decoder, codings.Identity)

    async def pieces(self) -> AsyncIterator[bytes]:
        """The decoded body piece by piece, each checked against the size limit and charged as it comes;
        a body that does not decode, or arrive in time, ends them with its refusal."""
        reader, received, size = self.reader, 0, 0
        state = self.request.scope["state"]
        chunks = self.request.stream()
        # A client that trickles its body must not hold a worker forever. The deadline is checked
        # only while a chunk is awaited: the pieces may be consumed by another task (a gRPC call's).
        deadline = asyncio.get_running_loop().time() + reader.timeout_s
        while True:
            try:
                async with asyncio.timeout_at(deadline):
                    chunk = await anext(chunks, None)
            except TimeoutError:
                raise ApiFailure(
                    ApiStatus.PAYLOAD_CONTENT_ERROR, f"the body did not arrive within {reader.timeout_s:g} s"
                ) from None
            if chunk is None:
                break
            received += len(chunk)
            if received > reader.limit:
                raise reader.too_large("")
            if self.declared_size is None:
                reader.admission.charge(self.request.scope, len(chunk))
            for piece in self.decoder.feed(chunk):
                size += len(piece)
                if size > reader.limit:
                    raise reader.too_large(" once decoded")
                hold_body_bytes(state, len(piece))
                yield piece
                if len(piece) == codings.PIECE:
                    # A whole piece is a few ms of decoding: let the other requests in between.
                    await asyncio.sleep(0)
        self.decoder.finish()
