"""PromQL refusals as API failures: Prometheus's `bad_data` (400) and `execution` (422) errors.

Both are INVALID_PARAMETERS to gRPC callers; the gateway tells them apart by
their HTTP status, which travels with the failure (storecast/status.py).
"""

from __future__ import annotations

from storecast.status import ApiFailure, ApiStatus


def bad_data(message: str) -> ApiFailure:
    return ApiFailure.with_message(ApiStatus.INVALID_PARAMETERS, message)


def execution(message: str) -> ApiFailure:
    return ApiFailure.with_message(ApiStatus.INVALID_PARAMETERS, message, http_status=422)
