"""The fleet's load generator on the wire: one keep-alive HTTP/1.1 connection, requests as prepared bytes.

On a 2-core machine the generator shares the CPUs with the system it measures.
httpx spent about 1.4 ms of CPU per 1-record request here (its request and
response models, header normalisation, the http11 state machine), as much as a
lean server's whole answer, so the generator, not the server, set the pace and
the server's share of the CPUs depended on how heavy the generator was. This
client sends bytes built before the clock starts and parses only the status
line and the framing headers: about 0.2 ms per request, the same for every
system measured.
"""

from __future__ import annotations

import socket
import ssl
from urllib.parse import urlsplit

_CHUNK = 65_536


class WireError(Exception):
    """The server broke the HTTP framing or closed the connection mid-response."""


class Connection:
    """One keep-alive connection (TLS when `context` is given), opened again after the server closes it."""

    def __init__(self, base_url: str, context: ssl.SSLContext | None, timeout_s: float) -> None:
        parts = urlsplit(base_url)
        self.host = parts.hostname or "localhost"
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self._context = context if parts.scheme == "https" else None
        self._timeout_s = timeout_s
        self._socket: socket.socket | None = None
        self._buffer = b""

    def request(self, method: str, target: str, body: bytes = b"", content_type: str | None = None) -> bytes:
        """The bytes of one request, for `exchange`."""
        head = f"{method} {target} HTTP/1.1\r\nhost: {self.host}\r\n"
        if content_type is not None:
            head += f"content-type: {content_type}\r\n"
        if body or method in ("PUT", "POST"):
            head += f"content-length: {len(body)}\r\n"
        return head.encode("ascii") + b"\r\n" + body

    def exchange(self, request: bytes) -> tuple[int, bytes]:
        """Send one prepared request; its status and body."""
        if self._socket is None:
            self._connect()
        assert self._socket is not None
        try:
            self._socket.sendall(request)
            status, body, keep_alive = self._read_response()
        except (OSError, WireError):
            self.close()
            raise
        if not keep_alive:
            self.close()
        return status, body

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None
        self._buffer = b""

    def _connect(self) -> None:
        raw = socket.create_connection((self.host, self.port), timeout=self._timeout_s)
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._socket = raw if self._context is None else self._context.wrap_socket(raw, server_hostname=self.host)

    def _receive(self) -> None:
        assert self._socket is not None
        data = self._socket.recv(_CHUNK)
        if not data:
            raise WireError("the server closed the connection")
        self._buffer += data

    def _read_response(self) -> tuple[int, bytes, bool]:
        while (end := self._buffer.find(b"\r\n\r\n")) < 0:
            self._receive()
        head, self._buffer = self._buffer[:end], self._buffer[end + 4 :]
        lines = head.split(b"\r\n")
        try:
            status = int(lines[0].split(b" ", 2)[1])
        except (IndexError, ValueError):
            raise WireError(f"malformed status line {lines[0][:80]!r}") from None
        length: int | None = None
        chunked = False
        keep_alive = True
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding":
                chunked = b"chunked" in value.lower()
            elif name == b"connection":
                keep_alive = value.strip().lower() != b"close"
        if chunked:
            return status, self._read_chunks(), keep_alive
        if length is None:
            if status in (204, 304) or 100 <= status < 200:
                return status, b"", keep_alive
            raise WireError("a response without Content-Length or chunked framing")
        return status, self._take(length), keep_alive

    def _take(self, count: int) -> bytes:
        while len(self._buffer) < count:
            self._receive()
        data, self._buffer = self._buffer[:count], self._buffer[count:]
        return data

    def _read_chunks(self) -> bytes:
        parts: list[bytes] = []
        while True:
            while (end := self._buffer.find(b"\r\n")) < 0:
                self._receive()
            size = int(self._buffer[:end].split(b";", 1)[0], 16)
            self._buffer = self._buffer[end + 2 :]
            if size == 0:
                while (end := self._buffer.find(b"\r\n")) != 0:  # trailers, then the blank line
                    if end < 0:
                        self._receive()
                    else:
                        self._buffer = self._buffer[end + 2 :]
                self._buffer = self._buffer[2:]
                return b"".join(parts)
            parts.append(self._take(size))
            self._take(2)
