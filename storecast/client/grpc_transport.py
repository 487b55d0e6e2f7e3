"""The gRPC transport: the ingest, query and vector services called directly, with typed batches.

Puts carry a `RecordBatch` (v1 JSON only for records holding a value that does
not fit its column, so that the service refuses it with its own message);
reads use the `Stream*` RPCs, which return every selected record as a stream
of batches, so a read of any size needs no cursor. A refusal's `ApiError`
comes from the `google.rpc.Status` details (storecast/status.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import grpc
import msgspec
from google.rpc import status_pb2
from grpc_status import rpc_status

from storecast.client.batches import from_batch, to_batch
from storecast.client.errors import ApiError, StorecastError, TooLarge, TransportError
from storecast.client.query import Query, result_kinds
from storecast.client.series import Category, Series
from storecast.client.table import Table
from storecast.client.v1json import encode_put
from storecast.status import from_rpc_status
from storecast.v1 import (
    catalog_pb2,
    ingest_pb2,
    ingest_pb2_grpc,
    query_pb2,
    query_pb2_grpc,
    records_pb2,
    vector_pb2,
    vector_pb2_grpc,
)

T = TypeVar("T")
_OPTIONS = [("grpc.max_receive_message_length", -1), ("grpc.max_send_message_length", -1)]
# A read of no period at all lists a vector's vintages (each selected vector with no period).
_NO_PERIOD = records_pb2.Interval(start_ms=0, end_ms=1)

GetRequest = (
    query_pb2.GetProductionRequest | vector_pb2.GetForecastRequest | vector_pb2.GetCommitmentRequest | vector_pb2.GetTariffRequest
)


def channel_credentials(cert: bytes | None = None, key: bytes | None = None, ca: bytes | None = None) -> grpc.ChannelCredentials:
    """TLS trusting `ca` (else the system's CAs), presenting `cert`/`key` when given (mutual TLS)."""
    return grpc.ssl_channel_credentials(root_certificates=ca, private_key=key, certificate_chain=cert)


class GrpcTransport:
    def __init__(
        self,
        target: str,
        *,
        credentials: grpc.ChannelCredentials | None = None,
        timeout: float = 120.0,
        stream_timeout: float | None = 3600.0,
    ) -> None:
        if credentials is None:
            self._channel = grpc.insecure_channel(target, options=_OPTIONS)
        else:
            self._channel = grpc.secure_channel(target, credentials, options=_OPTIONS)
        self._timeout = timeout
        self._stream_timeout = stream_timeout
        self._ingest = ingest_pb2_grpc.IngestStub(self._channel)
        self._query = query_pb2_grpc.QueryStub(self._channel)
        self._vector = vector_pb2_grpc.VectorStub(self._channel)

    def close(self) -> None:
        self._channel.close()

    def put(self, site: int, series: Series, table: Table) -> int | None:
        if table.has_raw:
            return self.put_json(site, series, encode_put(table))
        return self._put(site, series, batch=to_batch(table))

    def put_json(self, site: int, series: Series, body: bytes) -> int | None:
        return self._put(site, series, v1_json=body)

    def _put(self, site: int, series: Series, **payload: Any) -> int:
        kind = series.record_type.enum_value
        if series.category is Category.PRODUCTION:
            production = ingest_pb2.PutProductionRequest(
                site_id=site, equipment_type=catalog_pb2.EquipmentType.ValueType(kind), **payload
            )
            reply = self._call(lambda: self._ingest.PutProduction(production, timeout=self._timeout))
        elif series.category is Category.FORECAST:
            forecast = vector_pb2.PutForecastRequest(
                site_id=site, forecast_type=catalog_pb2.ForecastType.ValueType(kind), **payload
            )
            reply = self._call(lambda: self._vector.PutForecast(forecast, timeout=self._timeout))
        elif series.category is Category.COMMITMENT:
            commitment = vector_pb2.PutCommitmentRequest(site_id=site, **payload)
            reply = self._call(lambda: self._vector.PutCommitment(commitment, timeout=self._timeout))
        else:
            tariff = vector_pb2.PutTariffRequest(site_id=site, **payload)
            reply = self._call(lambda: self._vector.PutTariff(tariff, timeout=self._timeout))
        return reply.stored

    def read(self, site: int, series: Series, id: int, query: Query) -> Iterator[Table]:
        kinds = result_kinds(series, query)
        request = self._request(site, series, id, query)
        stream = self._stream(series, request)
        try:
            for batch in stream:
                yield from_batch(series, batch, kinds)
        except grpc.RpcError as error:
            raise _failure(error) from None

    def vintages(self, site: int, series: Series, id: int, generated_after: int, generated_before: int) -> list[int]:
        query = Query.of(generated_after=generated_after, generated_before=generated_before, generate_all=True)
        request = self._request(site, series, id, query)
        request.range.CopyFrom(_NO_PERIOD)
        request.format = records_pb2.V1_JSON
        if isinstance(request, vector_pb2.GetForecastRequest):
            forecast = request
            records = self._call(lambda: self._vector.GetForecast(forecast, timeout=self._timeout))
        elif isinstance(request, vector_pb2.GetCommitmentRequest):
            commitment = request
            records = self._call(lambda: self._vector.GetCommitment(commitment, timeout=self._timeout))
        else:
            raise ValueError(f"{series} has no vintages")
        results: list[dict[str, Any]] = msgspec.json.decode(records.results_json)
        return sorted(int(entry["creation_timestamp"]) for entry in results)

    def _request(self, site: int, series: Series, id: int, query: Query) -> GetRequest:
        query.check(series.category)
        fields: dict[str, Any] = {"site_id": site, "id": id, "format": records_pb2.BATCH, **query.request_fields()}
        kind = series.record_type.enum_value
        if series.category is Category.PRODUCTION:
            return query_pb2.GetProductionRequest(equipment_type=catalog_pb2.EquipmentType.ValueType(kind), **fields)
        if series.category is Category.FORECAST:
            return vector_pb2.GetForecastRequest(forecast_type=catalog_pb2.ForecastType.ValueType(kind), **fields)
        if series.category is Category.COMMITMENT:
            return vector_pb2.GetCommitmentRequest(**fields)
        return vector_pb2.GetTariffRequest(**fields)

    def _stream(self, series: Series, request: GetRequest) -> Iterator[records_pb2.RecordBatch]:
        timeout = self._stream_timeout
        if isinstance(request, query_pb2.GetProductionRequest):
            return self._query.StreamProduction(request, timeout=timeout)
        if isinstance(request, vector_pb2.GetForecastRequest):
            return self._vector.StreamForecast(request, timeout=timeout)
        if isinstance(request, vector_pb2.GetCommitmentRequest):
            return self._vector.StreamCommitment(request, timeout=timeout)
        return self._vector.StreamTariff(request, timeout=timeout)

    @staticmethod
    def _call(call: Callable[[], T]) -> T:
        try:
            return call()
        except grpc.RpcError as error:
            raise _failure(error) from None


def _failure(error: grpc.RpcError) -> StorecastError:
    """The ApiError in the status details; a message over the server's size limit; else no API answer."""
    call: Any = error
    status: status_pb2.Status | None = rpc_status.from_call(call)
    code: grpc.StatusCode = call.code()
    details: str = call.details() or ""
    failure = from_rpc_status(status)
    if failure is not None:
        return ApiError(int(failure.code), failure.message, grpc_code=code)
    if code is grpc.StatusCode.RESOURCE_EXHAUSTED:
        return TooLarge(1303, f"payload content error: {details}", grpc_code=code)
    return TransportError(f"{code.name}: {details}", grpc_code=code)
