"""The client's exceptions: what the API refused (with its status code and message), and failures to reach it."""

from __future__ import annotations

import grpc


class StorecastError(Exception):
    """Anything the client raises about a request: an API refusal or a failure to get an answer."""


class ApiError(StorecastError):
    """A request the API refused, with the contract's status code (1xxx) and message.

    `http_status` is set over REST and `grpc_code` over gRPC. For a refused PUT
    whose message names a record (`values[3].p: ...`), `row` is that record's
    position in the data given to put (a period's row for vectors), and `line`
    its line in the imported file, when known.
    """

    def __init__(
        self,
        status_code: int,
        status_message: str,
        *,
        http_status: int | None = None,
        grpc_code: grpc.StatusCode | None = None,
    ) -> None:
        super().__init__(f"{status_code} {status_message}")
        self.status_code = status_code
        self.status_message = status_message
        self.http_status = http_status
        self.grpc_code = grpc_code
        self.row: int | None = None
        self.line: int | None = None


class TransportError(StorecastError):
    """No API answer: the server could not be reached, or answered outside the API (no status code)."""

    def __init__(self, message: str, *, http_status: int | None = None, grpc_code: grpc.StatusCode | None = None) -> None:
        super().__init__(message)
        self.http_status = http_status
        self.grpc_code = grpc_code


class TooLarge(ApiError):
    """A PUT over the server's size limit (HTTP 413, or a gRPC message over the limit): nothing was
    stored, and the client sends the records again in two halves (one record alone raises it)."""
