"""The REST transport: the public v1 API over HTTPS with a client certificate (httpx).

One `httpx.Client` keeps connections alive across requests and threads; it
retries a request whose connection could not be made (`retries`), never one
that reached the server. A read follows `next_from` through partial (206)
responses by itself.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from os import PathLike
from typing import Any

import httpx
import msgspec

from storecast.client.errors import ApiError, TooLarge, TransportError
from storecast.client.query import Query, result_kinds
from storecast.client.series import Series
from storecast.client.table import Table
from storecast.client.v1json import decode_results, encode_put

StrPath = str | PathLike[str]
_JSON = {"content-type": "application/json"}
# A read of no period at all (from=0&to=1) lists a vector's vintages: each selected vector comes with "values": [].
_NO_PERIOD = {"from": "0", "to": "1"}


class _Envelope(msgspec.Struct):
    status_code: int
    status_message: str
    next_from: int | None = None
    results: list[Any] = []


_DECODER = msgspec.json.Decoder(_Envelope)


def ssl_context(cert: StrPath | None = None, key: StrPath | None = None, ca: StrPath | None = None) -> ssl.SSLContext:
    """Trust `ca` (else the system's CAs) and present `cert`/`key` when given."""
    context = ssl.create_default_context(cafile=None if ca is None else str(ca))
    if cert is not None:
        context.load_cert_chain(str(cert), None if key is None else str(key))
    return context


class RestTransport:
    def __init__(
        self,
        url: str,
        *,
        cert: StrPath | None = None,
        key: StrPath | None = None,
        ca: StrPath | None = None,
        timeout: float = 120.0,
        retries: int = 3,
        max_connections: int = 16,
    ) -> None:
        transport = httpx.HTTPTransport(
            verify=ssl_context(cert, key, ca),
            retries=retries,
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
        )
        self._http = httpx.Client(
            base_url=url.rstrip("/"),
            transport=transport,
            timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
            headers={"accept": "application/json"},
        )

    def close(self) -> None:
        self._http.close()

    def put(self, site: int, series: Series, table: Table) -> int | None:
        self.put_json(site, series, encode_put(table))
        return table.rows

    def put_json(self, site: int, series: Series, body: bytes) -> int | None:
        self._request("PUT", series.path(site), content=body, headers=_JSON)
        return None

    def read(self, site: int, series: Series, id: int, query: Query) -> Iterator[Table]:
        kinds = result_kinds(series, query)
        # An aggregation v1 does not serve is read under /ext/v1, with the same query string.
        path = f"{'/ext' if query.beyond_v1 else ''}{series.path(site)}/{id}"
        while True:
            envelope = self._request("GET", path, params=query.params())
            yield decode_results(series, envelope.results, kinds)
            if envelope.next_from is None:
                return
            query = query.resumed(envelope.next_from)

    def vintages(self, site: int, series: Series, id: int, generated_after: int, generated_before: int) -> list[int]:
        params = {**_NO_PERIOD, "generated-after": str(generated_after), "generated-before": str(generated_before)}
        envelope = self._request("GET", f"{series.path(site)}/{id}", params={**params, "generate-all": "true"})
        return sorted(int(entry["creation_timestamp"]) for entry in envelope.results)

    def _request(self, method: str, path: str, **kwargs: Any) -> _Envelope:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as error:
            raise TransportError(f"{method} {path}: {type(error).__name__}: {error}") from error
        try:
            envelope = _DECODER.decode(response.content)
        except msgspec.DecodeError:
            raise TransportError(
                f"{method} {path}: HTTP {response.status_code} without the API's envelope: {response.text[:200]!r}",
                http_status=response.status_code,
            ) from None
        if response.status_code in (200, 201, 206):
            return envelope
        error_type = TooLarge if response.status_code == 413 else ApiError
        raise error_type(envelope.status_code, envelope.status_message, http_status=response.status_code)
