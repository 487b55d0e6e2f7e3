"""The vector service: forecasts, commitments and tariffs, stored and read."""

from __future__ import annotations

import grpc

from storecast.catalog import COMMITMENT, FORECAST_BY_ENUM, FORECAST_TYPES, TARIFF, RecordType
from storecast.services.lib.batching import BatchSettings, Committer
from storecast.services.lib.columns import Columns
from storecast.services.lib.keys import KnownIds
from storecast.services.lib.render import JSON_ARRAY_FORMAT, leading_timestamp, limit_array
from storecast.services.lib.rpc import Registration
from storecast.services.lib.schema import COMMITMENT_TABLE, FORECAST_TABLES, TARIFF_TABLE, Table
from storecast.services.lib.store import Store
from storecast.services.lib.window import check_vintage, check_window, record_limit
from storecast.services.vector.sql import tariff_sql, vector_sql
from storecast.services.vector.write import TariffWriter, VectorWriter
from storecast.status import ApiFailure, ApiStatus
from storecast.v1 import records_pb2, vector_pb2, vector_pb2_grpc

VectorRequest = vector_pb2.GetForecastRequest | vector_pb2.GetCommitmentRequest


def _forecast_type(enum_value: int) -> RecordType:
    forecast = FORECAST_BY_ENUM.get(enum_value)
    if forecast is None:
        raise ApiFailure(ApiStatus.INVALID_TYPE, f"unknown forecast type {enum_value}")
    return forecast


# Every vector-category row is keyed by its first three insert columns:
# (site_id, id, creation_timestamp) for vectors, (site_id, id, timestamp) for tariff periods.
_KEY_COLUMNS = (0, 1, 2)


class VectorService(vector_pb2_grpc.VectorServicer):
    def __init__(self, store: Store, max_records: int, batching: BatchSettings) -> None:
        self._store = store
        self._max_records = max_records
        self._batching = batching
        self._known_ids = KnownIds()
        self._forecast_writers = {t.enum_value: VectorWriter(FORECAST_TABLES[name], t) for name, t in FORECAST_TYPES.items()}
        self._commitment_writer = VectorWriter(COMMITMENT_TABLE, COMMITMENT)
        self._tariff_writer = TariffWriter(TARIFF_TABLE, TARIFF)
        writers: list[VectorWriter | TariffWriter] = [
            *self._forecast_writers.values(),
            self._commitment_writer,
            self._tariff_writer,
        ]
        self._committers = {writer.table.name: self._committer(writer.table, writer.column_names) for writer in writers}

    def _committer(self, table: Table, column_names: list[str]) -> Committer:
        name = self._store.table(table.name)
        settings = self._batching.insert_settings()

        def insert(columns: Columns) -> None:
            with self._store.client() as client:
                client.insert(name, columns, column_names=column_names, column_oriented=True, settings=settings)

        return Committer(table.name, insert, _KEY_COLUMNS, self._batching)

    def PutForecast(self, request: vector_pb2.PutForecastRequest, context: grpc.ServicerContext) -> records_pb2.PutReply:
        writer = self._forecast_writers[_forecast_type(request.forecast_type).enum_value]
        return self._store_rows(writer.table, writer.columns(request.site_id, request.body))

    def PutCommitment(self, request: vector_pb2.PutCommitmentRequest, context: grpc.ServicerContext) -> records_pb2.PutReply:
        writer = self._commitment_writer
        return self._store_rows(writer.table, writer.columns(request.site_id, request.body))

    def PutTariff(self, request: vector_pb2.PutTariffRequest, context: grpc.ServicerContext) -> records_pb2.PutReply:
        writer = self._tariff_writer
        return self._store_rows(writer.table, writer.columns(request.site_id, request.body))

    def GetForecast(self, request: vector_pb2.GetForecastRequest, context: grpc.ServicerContext) -> records_pb2.Records:
        forecast = _forecast_type(request.forecast_type)
        return self._read_vectors(FORECAST_TABLES[forecast.name], forecast, request, f"{forecast.name} forecast")

    def GetCommitment(self, request: vector_pb2.GetCommitmentRequest, context: grpc.ServicerContext) -> records_pb2.Records:
        return self._read_vectors(COMMITMENT_TABLE, COMMITMENT, request, "commitment")

    def GetTariff(self, request: vector_pb2.GetTariffRequest, context: grpc.ServicerContext) -> records_pb2.Records:
        window = check_window(request.range if request.HasField("range") else None, records_pb2.AGGREGATION_UNSPECIFIED, None)
        limit = record_limit(request.max_records, self._max_records)
        table = self._store.table(TARIFF_TABLE.name)
        parameters = {"site_id": request.site_id, "id": request.id, "start": window.start, "end": window.end}
        with self._store.client() as client:
            # One period more than the limit tells whether the response is partial.
            sql = tariff_sql(table, TARIFF, window, limit + 1)
            rendered = limit_array(client.raw_query(sql, parameters, fmt=JSON_ARRAY_FORMAT), limit)
            if rendered.count == 0:
                self._known_ids.check(client, table, request.site_id, request.id, "tariff")
                return records_pb2.Records(results_json=b"[]", count=0)
            self._known_ids.add(table, request.site_id, request.id)
        next_from = None if rendered.first_left_out is None else leading_timestamp(rendered.first_left_out)
        results = b'[{"id":%d,"values":%s}]' % (request.id, rendered.results)
        return records_pb2.Records(results_json=results, count=rendered.count, next_from=next_from)

    def _read_vectors(self, layout: Table, record_type: RecordType, request: VectorRequest, what: str) -> records_pb2.Records:
        window = check_window(
            request.range if request.HasField("range") else None,
            request.aggregation,
            request.period_ms if request.HasField("period_ms") else None,
        )
        vintage = check_vintage(
            request.generated if request.HasField("generated") else None,
            request.generate_all if request.HasField("generate_all") else None,
        )
        limit = record_limit(request.max_records, self._max_records)
        table = self._store.table(layout.name)
        parameters = {
            "site_id": request.site_id,
            "id": request.id,
            "start": window.start,
            "end": window.end,
            "generated_start": vintage.start,
            "generated_end": vintage.end,
        }
        with self._store.client() as client:
            line = client.raw_query(vector_sql(table, record_type, window, vintage, limit), parameters, fmt="TabSeparatedRaw")
            count, next_from, results = line.rstrip(b"\n").split(b"\t", 2)
            if results:
                self._known_ids.add(table, request.site_id, request.id)
            else:
                self._known_ids.check(client, table, request.site_id, request.id, what)
        return records_pb2.Records(
            results_json=b"[" + results + b"]", count=int(count), next_from=int(next_from) if next_from else None
        )

    def _store_rows(self, table: Table, columns: Columns) -> records_pb2.PutReply:
        self._committers[table.name].store(columns)
        return records_pb2.PutReply(stored=len(columns[0]))


def register(store: Store, max_records: int, batching: BatchSettings) -> Registration:
    def add(server: grpc.Server) -> str:
        vector_pb2_grpc.add_VectorServicer_to_server(VectorService(store, max_records, batching), server)
        return vector_pb2.DESCRIPTOR.services_by_name["Vector"].full_name

    return add
