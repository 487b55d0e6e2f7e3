"""Client certificates: from the TLS connection into the ASGI scope, and out as a CN.

uvicorn does not fill the ASGI TLS extension (scope["extensions"]["tls"]), so
our HTTP protocol does: Python's ssl has already verified the certificate
against the client CA during the handshake (CERT_OPTIONAL: an absent
certificate passes, one that does not chain to the CA is refused), and the
app reads the verified leaf from the scope, as the extension specifies.
"""

from __future__ import annotations

import ssl
import uuid
from functools import lru_cache
from http import HTTPStatus
from typing import Any

import httptools
import msgspec
from cryptography import x509
from cryptography.x509.oid import NameOID
from starlette.types import Scope
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from gateway import routing
from storecast.status import ApiFailure, ApiStatus

# llhttp sets no limit of its own on the request line or the headers.
MAX_URL_BYTES = 16 * 1024
MAX_HEADER_BYTES = 64 * 1024
# How long a refused connection keeps reading (and dropping) before it closes.
LINGER_S = 1.0
# How long an idle connection stays open once shutdown began: a request whose
# bytes are already on their way is served, not cut off.
DRAIN_IDLE_S = 0.5


class _RequestHeadTooLarge(Exception):
    pass


class GatewayHttpProtocol(HttpToolsProtocol):
    """HttpToolsProtocol that puts the ASGI TLS extension into every request scope,
    bounds the request head, and answers requests the HTTP parser refuses in the
    API's JSON envelope."""

    # uvicorn types an extension as dict[object, object]; this one is the ASGI TLS extension.
    _tls: dict[object, object] | None = None
    _head_bytes = 0
    _refused = False
    _draining = False

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        ssl_object: ssl.SSLObject | None = transport.get_extra_info("ssl_object")
        if ssl_object is None:
            return
        peer = ssl_object.getpeercert(binary_form=True)
        self._tls = {
            "server_cert": None,
            "client_cert_chain": [ssl.DER_cert_to_PEM_cert(peer)] if peer else [],
            "client_cert_name": None,
            "client_cert_error": None,
            "tls_version": None,
            "cipher_suite": None,
        }

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head_bytes = 0
        if self._tls is not None:
            self.scope["extensions"] = {"tls": self._tls}

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        if self._draining and self.cycle is not None:
            self.cycle.keep_alive = False  # served, then closed: the server is stopping

    def shutdown(self) -> None:
        """uvicorn closes a connection with no request cycle at once, even one whose
        request has arrived but not yet been parsed (a loaded server, a worker told to
        stop by `serve all`); this one gives such a request the time to begin."""
        if self.cycle is not None and not self.cycle.response_complete:
            self.cycle.keep_alive = False
            return
        self._draining = True
        self.loop.call_later(DRAIN_IDLE_S, self._close_if_idle)

    def _close_if_idle(self) -> None:
        if self.cycle is None or self.cycle.response_complete:
            self.transport.close()

    def on_url(self, url: bytes) -> None:
        if len(self.url) + len(url) > MAX_URL_BYTES:
            raise _RequestHeadTooLarge(f"the URL is longer than {MAX_URL_BYTES} bytes")
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._head_bytes += len(name) + len(value)
        if self._head_bytes > MAX_HEADER_BYTES:
            raise _RequestHeadTooLarge(f"the headers are larger than {MAX_HEADER_BYTES} bytes")
        super().on_header(name, value)

    def data_received(self, data: bytes) -> None:
        # As uvicorn's, but llhttp refuses methods it does not know (e.g. "FOO")
        # before the app sees them, and the contract wants them answered as any
        # other method the API does not take.
        if self._refused:
            return  # the rest of a refused request, read and dropped until the lingering close
        self._unset_keepalive_if_required()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserInvalidMethodError:
            self._refuse(_unknown_method_refusal(data))
        except httptools.HttpParserUpgrade:
            self._unsupported_upgrade_warning()  # the API has no WebSocket
        except httptools.HttpParserCallbackError as error:
            # httptools wraps what a callback raised; ours say what was too large.
            cause = error.__context__
            detail = str(cause) if isinstance(cause, _RequestHeadTooLarge) else "malformed HTTP request"
            self._refuse(ApiFailure(ApiStatus.INVALID_HEADER, detail))
        except httptools.HttpParserError:
            self._refuse(ApiFailure(ApiStatus.INVALID_HEADER, "malformed HTTP request"))

    def _refuse(self, failure: ApiFailure) -> None:
        body = msgspec.json.encode({"status_code": failure.code, "status_message": failure.message})
        allow = f"allow: {failure.allow}\r\n" if isinstance(failure, routing.MethodNotAllowed) else ""
        head = (
            f"HTTP/1.1 {failure.http_status} {HTTPStatus(failure.http_status).phrase}\r\n"
            f"content-type: application/json\r\ncontent-length: {len(body)}\r\n{allow}"
            f"x-request-id: {uuid.uuid4().hex}\r\nconnection: close\r\n\r\n"
        )
        self.transport.write(head.encode("ascii") + body)
        # A lingering close: closing with the client's bytes still unread makes the
        # kernel send a reset, which can reach the client before the answer does.
        self._refused = True
        self.loop.call_later(LINGER_S, self.transport.close)


def _unknown_method_refusal(data: bytes) -> ApiFailure:
    """What the app would answer a method it does not take (DELETE, say) on this request line:
    404 for a path no endpoint has, else 405 with the methods the path takes."""
    method, _, rest = data.partition(b" ")
    malformed = ApiFailure(ApiStatus.INVALID_HEADER, "malformed HTTP request")
    if not (method.isalpha() and len(method) <= 32):
        return malformed
    try:
        routing.resolve(method.decode("ascii"), routing.shape(rest.split(b" ", 1)[0].split(b"?", 1)[0]))
    except ApiFailure as failure:
        return failure
    # The data began with a request the app takes; the unknown method came later in it.
    return malformed


@lru_cache(maxsize=1024)
def common_name(pem: str) -> str | None:
    certificate = x509.load_pem_x509_certificate(pem.encode())
    names = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(names[0].value) if names else None


def client_common_name(scope: Scope) -> str | None:
    """The CN of the verified client certificate, or None without one."""
    chain = scope.get("extensions", {}).get("tls", {}).get("client_cert_chain") or []
    return common_name(chain[0]) if chain else None


def server_ssl_options(cert: str, key: str, client_ca: str) -> dict[str, Any]:
    """uvicorn.Config TLS arguments: our certificate, client certificates optional but verified."""
    return {
        "ssl_certfile": cert,
        "ssl_keyfile": key,
        "ssl_ca_certs": client_ca,
        "ssl_cert_reqs": ssl.CERT_OPTIONAL,
    }
