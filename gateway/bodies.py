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
"""

from __future__ import annotations

import asyncio
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
        decoder = codings.decoder(request.headers.getlist("content-encoding"))
        declared = request.headers.get("content-length", "")
        declared_size = int(declared) if declared.isdigit() else None
        if declared_size is not None and declared_size > self.limit:
            raise self._too_large("")
        # Over the in-flight budget: 503 before any of the body is read.
        if declared_size is not None:
            self.admission.charge(request.scope, declared_size)
        pieces, received, size = [], 0, 0
        state = request.scope["state"]
        try:
            # A client that trickles its body must not hold a worker forever.
            async with asyncio.timeout(self.timeout_s):
                async for chunk in request.stream():
                    received += len(chunk)
                    if received > self.limit:
                        raise self._too_large("")
                    if declared_size is None:
                        self.admission.charge(request.scope, len(chunk))
                    for piece in decoder.feed(chunk):
                        size += len(piece)
                        if size > self.limit:
                            raise self._too_large(" once decoded")
                        hold_body_bytes(state, len(piece))
                        pieces.append(piece)
                        if len(piece) == codings.PIECE:
                            # A whole piece is a few ms of decoding: let the other requests in between.
                            await asyncio.sleep(0)
        except TimeoutError:
            raise ApiFailure(ApiStatus.PAYLOAD_CONTENT_ERROR, f"the body did not arrive within {self.timeout_s:g} s") from None
        decoder.finish()
        return b"".join(pieces)

    def _too_large(self, how: str) -> ApiFailure:
        return ApiFailure(ApiStatus.PAYLOAD_CONTENT_ERROR, f"the body is larger than {self.limit} bytes{how}", http_status=413)
