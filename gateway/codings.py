"""HTTP content codings on every path (docs/api/v1.md §10): gzip and zstd, both ways.

- **Answers.** `EncodeResponses` encodes each answer in the coding the request's
  Accept-Encoding prefers (RFC 9110 §12.5.3: the highest q, a tie to zstd), if
  its body is at least MINIMUM_SIZE bytes; below that the coding saves less than
  it costs. Every answer it passes carries `Vary: Accept-Encoding`, the encoded
  ones the encoded Content-Length, and when a coding was negotiated a weak ETag:
  the bytes sent depend on the coding (RFC 9110 §8.8.1), the representation
  does not, and If-None-Match compares weakly (gateway/console). The levels
  keep the CPU small (docs/api/v1.md §10, "Content codings", gives `make bench`'s
  figures on a 20,000-record answer): gzip 3 is the cheapest level whose answer
  is within a fifth of the plain one; zstd 1 is smaller still for less than half
  its CPU, and cheaper than zstd 3 at about its size.
- **Request bodies.** `decoder` checks a body's Content-Encoding (415/1103 for
  a coding not served) and decodes it incrementally, in pieces of at most
  PIECE bytes, so that whoever counts them stops a bomb at its limit with
  little memory spent (gateway/bodies.py). A body that does not decode is
  400/1301.

gzip is zlib-ng (`zlib_ng`, zlib's API and format): at a level, about half the
CPU of Python's zlib for about its size, and decoding in about a third. zstd
is `backports.zstd` (clickhouse-connect's dependency, Python 3.14's
`compression.zstd`): its decompressor bounds each call's output, as zlib's
does. A body whose frame needs a window over 8 MiB, the most RFC 9659 lets an
HTTP zstd coding use, does not decode (level 1 encodes with at most 512 KiB).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Iterable, Iterator
from typing import Protocol, cast

from backports import zstd
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from zlib_ng import zlib_ng

from storecast.status import ApiFailure, ApiStatus

GZIP = "gzip"
ZSTD = "zstd"
# The codings served, in the order a tie of q values goes: zstd's answer is as small as gzip's for a quarter of the CPU.
CODINGS = (ZSTD, GZIP)
# RFC 9110 §8.4.1.3: a recipient treats x-gzip as gzip.
_ALIASES = {"x-gzip": GZIP}
ACCEPTED = ", ".join(CODINGS)

MINIMUM_SIZE = 1024
GZIP_LEVEL = 3
ZSTD_LEVEL = 1
# RFC 9659: a zstd-coded HTTP body's window is at most 8 MiB.
_ZSTD_WINDOW_LOG = 23
# An answer at least this large is encoded in a worker thread (zlib-ng and zstd release the GIL), keeping the event loop serving.
_THREAD_MINIMUM = 128 * 1024
# zlib_ng's stub declares `error` as an instance of Exception; it is the class.
_GZIP_ERROR = cast(type[Exception], zlib_ng.error)
# The most a decoder returns per call: the most a bomb gets past the limit before it is stopped.
PIECE = 1024 * 1024

_QVALUE = re.compile(r"q=(0(\.[0-9]{0,3})?|1(\.0{0,3})?)", re.ASCII | re.IGNORECASE)


def negotiate(accept_encoding: str) -> str | None:
    """The coding to answer in (RFC 9110 §12.5.3), None for none: the served coding with the highest q
    above 0 (a tie to CODINGS' order), unless the client gives `identity` a higher q still."""
    weights: dict[str, float] = {}
    for item in accept_encoding.split(","):
        name, *parameters = (part.strip() for part in item.split(";"))
        weight = 1.0
        for parameter in parameters:
            matched = _QVALUE.fullmatch(parameter.replace(" ", ""))
            weight = float(matched.group(1)) if matched else 0.0
        if name:
            name = name.lower()
            weights[_ALIASES.get(name, name)] = weight
    anything = weights.get("*", 0.0)
    best = max(CODINGS, key=lambda coding: weights.get(coding, anything))
    best_weight = weights.get(best, anything)
    if best_weight <= 0 or weights.get("identity", 0.0) > best_weight:
        return None
    return best


def encode(coding: str, body: bytes) -> bytes:
    if coding == GZIP:
        compressor = zlib_ng.compressobj(GZIP_LEVEL, zlib_ng.DEFLATED, 16 + zlib_ng.MAX_WBITS)
        return compressor.compress(body) + compressor.flush()
    return zstd.compress(body, level=ZSTD_LEVEL)


class EncodeResponses:
    """Encodes answers as the request's Accept-Encoding asks, whatever their path.

    An answer sent whole is encoded if it is at least MINIMUM_SIZE bytes; one
    streamed in several parts (a long read, gateway/reads.py) is encoded part by
    part whatever its size, which is not known when it starts. One already
    encoded goes out as it is.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        coding = negotiate(",".join(Headers(scope=scope).getlist("accept-encoding")))
        start: Message | None = None
        stream: StreamEncoder | None = None

        async def encoding_send(message: Message) -> None:
            nonlocal start, stream
            if message["type"] == "http.response.start":
                start = message  # held until the body is known
                return
            if start is not None and message["type"] == "http.response.body":
                held, start = start, None
                if message.get("more_body", False):
                    held, stream = _streamed(coding, held)
                else:
                    held, message = await _encoded(coding, held, message)
                await send(held)
            if stream is not None and message["type"] == "http.response.body":
                message = {
                    **message,
                    "body": await stream.encode(message.get("body", b""), last=not message.get("more_body", False)),
                }
            await send(message)

        await self.app(scope, receive, encoding_send)


class StreamEncoder:
    """One coding's encoder of a body sent in parts."""

    def __init__(self, coding: str) -> None:
        self._gzip = zlib_ng.compressobj(GZIP_LEVEL, zlib_ng.DEFLATED, 16 + zlib_ng.MAX_WBITS) if coding == GZIP else None
        self._zstd = zstd.ZstdCompressor(level=ZSTD_LEVEL) if coding == ZSTD else None

    def _encode(self, part: bytes, last: bool) -> bytes:
        if self._gzip is not None:
            return self._gzip.compress(part) + (self._gzip.flush() if last else b"")
        assert self._zstd is not None
        return self._zstd.compress(part) + (self._zstd.flush() if last else b"")

    async def encode(self, part: bytes, *, last: bool) -> bytes:
        """The encoded bytes of the next part, the coding's end too if it is the `last`."""
        if len(part) >= _THREAD_MINIMUM:
            return await asyncio.to_thread(self._encode, part, last)
        return self._encode(part, last)


def _negotiated(coding: str | None, start: Message) -> MutableHeaders:
    """An answer's headers once `coding` was negotiated for it (not yet marked as encoded)."""
    headers = MutableHeaders(raw=list(start.get("headers", [])))
    headers.add_vary_header("Accept-Encoding")
    if coding is not None:
        etag = headers.get("etag")
        if etag is not None and not etag.startswith("W/"):
            headers["etag"] = "W/" + etag
    return headers


def _streamed(coding: str | None, start: Message) -> tuple[Message, StreamEncoder | None]:
    """The start message of an answer sent in parts, and its parts' encoder (None: sent as they are)."""
    if "content-encoding" in MutableHeaders(raw=list(start.get("headers", []))):
        return start, None
    headers = _negotiated(coding, start)
    if coding is None:
        return {**start, "headers": headers.raw}, None
    headers["content-encoding"] = coding
    if "content-length" in headers:
        del headers["content-length"]
    return {**start, "headers": headers.raw}, StreamEncoder(coding)


async def _encoded(coding: str | None, start: Message, message: Message) -> tuple[Message, Message]:
    """The start and body messages of an answer sent whole, encoded in `coding` if it is worth it.

    New messages: a Response's start message holds its own header list, and a
    Response object may answer many requests (gateway/app.py's document).
    """
    if "content-encoding" in MutableHeaders(raw=list(start.get("headers", []))):
        return start, message
    headers = _negotiated(coding, start)
    body: bytes = message.get("body", b"")
    if coding is not None and len(body) >= MINIMUM_SIZE:
        body = await asyncio.to_thread(encode, coding, body) if len(body) >= _THREAD_MINIMUM else encode(coding, body)
        headers["content-encoding"] = coding
        headers["content-length"] = str(len(body))
        message = {**message, "body": body}
    return {**start, "headers": headers.raw}, message


# ---- request bodies ---------------------------------------------------------------


class UnsupportedCoding(ApiFailure):
    """415/1103, with the codings that would have been taken in an Accept-Encoding header (RFC 9110 §15.5.16)."""

    def __init__(self, detail: str) -> None:
        super().__init__(ApiStatus.INVALID_HEADER, detail, http_status=415)


class _Member(Protocol):
    """One gzip member's or zstd frame's decompressor."""

    @property
    def eof(self) -> bool: ...

    def decompress(self, data: bytes, max_length: int) -> tuple[bytes, bytes]:
        """At most max_length decoded bytes of `data`, and the input to pass again (past the member's end)."""
        ...


class _GzipMember:
    def __init__(self) -> None:
        self._zlib = zlib_ng.decompressobj(16 + zlib_ng.MAX_WBITS)

    @property
    def eof(self) -> bool:
        return self._zlib.eof

    def decompress(self, data: bytes, max_length: int) -> tuple[bytes, bytes]:
        decoded = self._zlib.decompress(data, max_length)
        # zlib-ng hands back the input it did not use; zstd keeps it (and its output) for the next call.
        return decoded, self._zlib.unused_data if self._zlib.eof else self._zlib.unconsumed_tail


class _ZstdFrame:
    def __init__(self) -> None:
        self._zstd = zstd.ZstdDecompressor(options={zstd.DecompressionParameter.window_log_max: _ZSTD_WINDOW_LOG})

    @property
    def eof(self) -> bool:
        return self._zstd.eof

    def decompress(self, data: bytes, max_length: int) -> tuple[bytes, bytes]:
        decoded = self._zstd.decompress(data, max_length)
        return decoded, self._zstd.unused_data if self._zstd.eof else b""


_MEMBERS: dict[str, Callable[[], _Member]] = {GZIP: _GzipMember, ZSTD: _ZstdFrame}


class BodyDecoder(Protocol):
    def feed(self, data: bytes) -> Iterable[bytes]:
        """The decoded bytes of the next bytes received, in pieces of at most PIECE bytes."""
        ...

    def finish(self) -> None:
        """Once every byte is fed: 1301 if the body does not end where a coding says it does."""
        ...


class Identity:
    """A body without a content coding."""

    def feed(self, data: bytes) -> Iterable[bytes]:
        return (data,) if data else ()

    def finish(self) -> None:
        pass


class Decoder:
    """A coded body's decoder: one or more gzip members (RFC 1952) or zstd frames (RFC 8878), one after
    the other; the body must end where one ends."""

    def __init__(self, coding: str) -> None:
        self.coding = coding
        self._member: _Member = _MEMBERS[coding]()

    def feed(self, data: bytes) -> Iterator[bytes]:
        more = True  # the last call's output was cut at PIECE: it may have more without input
        try:
            while data or more:
                if self._member.eof:
                    if not data:
                        return
                    self._member = _MEMBERS[self.coding]()
                piece, data = self._member.decompress(data, PIECE)
                more = len(piece) == PIECE
                if piece:
                    yield piece
        except (_GZIP_ERROR, zstd.ZstdError) as error:
            raise ApiFailure(ApiStatus.PAYLOAD_ENCODING_ERROR, f"the body does not decode as {self.coding}: {error}") from None

    def finish(self) -> None:
        if not self._member.eof:
            raise ApiFailure(ApiStatus.PAYLOAD_ENCODING_ERROR, f"the body does not decode as {self.coding}: it is truncated")


def decoder(content_encoding: list[str]) -> BodyDecoder:
    """The decoder of a body with these Content-Encoding header values; 415/1103 for a coding not served."""
    codings = [c for value in content_encoding for c in (part.strip().lower() for part in value.split(",")) if c]
    codings = [_ALIASES.get(c, c) for c in codings if c != "identity"]
    if not codings:
        return Identity()
    if len(codings) > 1 or codings[0] not in CODINGS:
        given = ", ".join(content_encoding)
        raise UnsupportedCoding(f"Content-Encoding {given!r} is not served; a body may be coded with one of {ACCEPTED}")
    return Decoder(codings[0])
