"""API status codes of status.proto, and their trip through gRPC.

A service raises `ApiFailure(ApiStatus.X, "detail")`; its gRPC server turns
it into a gRPC status with an `ApiError` in the details (`to_rpc_status`);
the gateway or any other caller reads it back with `from_rpc_status`.
"""

from __future__ import annotations

from dataclasses import dataclass

import grpc
from google.protobuf import any_pb2
from google.rpc import status_pb2

from storecast.v1 import status_pb2 as api_status_pb2

ApiStatus = api_status_pb2.ApiStatus


@dataclass(frozen=True, slots=True)
class StatusInfo:
    code: ApiStatus.ValueType
    message: str
    http_status: int
    grpc_code: grpc.StatusCode


def _load_status_table() -> dict[ApiStatus.ValueType, StatusInfo]:
    grpc_codes = {code.value[0]: code for code in grpc.StatusCode}
    table: dict[ApiStatus.ValueType, StatusInfo] = {}
    for code in ApiStatus.values():
        if code == ApiStatus.API_STATUS_UNSPECIFIED:
            continue
        spec = ApiStatus.DESCRIPTOR.values_by_number[code].GetOptions().Extensions[api_status_pb2.status]
        table[code] = StatusInfo(code, spec.message, spec.http_status, grpc_codes[spec.grpc_code])
    return table


STATUS: dict[ApiStatus.ValueType, StatusInfo] = _load_status_table()


class ApiFailure(Exception):
    """A request refused with one of the contract's API status codes."""

    def __init__(
        self,
        code: ApiStatus.ValueType,
        detail: str = "",
        http_status: int | None = None,
        grpc_code: grpc.StatusCode | None = None,
        retry_after_s: int | None = None,
    ) -> None:
        info = STATUS[code]
        self.code = code
        self.message = f"{info.message}: {detail}" if detail else info.message
        self.http_status = http_status or info.http_status
        # A refusal for load says so to gRPC callers (RESOURCE_EXHAUSTED, UNAVAILABLE) with the table's API code.
        self.grpc_code = grpc_code or info.grpc_code
        # A refusal for load that a retry cures: HTTP 503 with Retry-After (docs/api/v1.md §10).
        self.retry_after_s = retry_after_s
        if retry_after_s is not None and http_status is None:
            self.http_status = 503
        super().__init__(self.message)

    @classmethod
    def with_message(
        cls, code: ApiStatus.ValueType, message: str, retry_after_s: int | None = None, http_status: int | None = None
    ) -> ApiFailure:
        failure = cls(code, http_status=http_status, retry_after_s=retry_after_s)
        failure.message = message
        failure.args = (message,)
        return failure


def to_api_error(failure: ApiFailure) -> api_status_pb2.ApiError:
    # The HTTP status travels only when it is neither the code's own nor a retry's 503.
    own = STATUS[failure.code].http_status if failure.retry_after_s is None else 503
    return api_status_pb2.ApiError(
        status=failure.code,
        message=failure.message,
        retry_after_s=failure.retry_after_s or 0,
        http_status=0 if failure.http_status == own else failure.http_status,
    )


def from_api_error(error: api_status_pb2.ApiError) -> ApiFailure | None:
    if error.status not in STATUS:
        return None
    return ApiFailure.with_message(
        error.status, error.message, retry_after_s=error.retry_after_s or None, http_status=error.http_status or None
    )


def to_rpc_status(failure: ApiFailure) -> status_pb2.Status:
    detail = any_pb2.Any()
    detail.Pack(to_api_error(failure))
    return status_pb2.Status(code=failure.grpc_code.value[0], message=failure.message, details=[detail])


def from_rpc_status(rpc_status: status_pb2.Status | None) -> ApiFailure | None:
    """The ApiFailure carried in a gRPC status's details, if there is one."""
    if rpc_status is None:
        return None
    for detail in rpc_status.details:
        if detail.Is(api_status_pb2.ApiError.DESCRIPTOR):
            error = api_status_pb2.ApiError()
            detail.Unpack(error)
            failure = from_api_error(error)
            if failure is not None:
                return failure
    return None
