"""The vector service: forecasts, commitments and tariffs, stored and read."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import grpc
import numpy as np
import pyarrow as pa
from prometheus_client import Counter

from services.lib.reads.render import JSON_ARRAY_FORMAT, leading_timestamp, limit_array
from services.lib.reads.window import Vintage, Window, check_vintage, check_window, record_limit
from services.lib.recent.answer import RecentReads
from services.lib.records import typed
from services.lib.records.columns import Columns
from services.lib.records.group_commit import BatchSettings, Committer
from services.lib.rpc.admission import charge_records
from services.lib.rpc.metrics import RECORDS_READ, RECORDS_WRITTEN, VECTORS_WRITTEN, store_insert, store_query
from services.lib.rpc.server import Registration, on_worker_threads
from services.lib.store.engine import Store
from services.lib.store.keys import KnownIds
from services.lib.store.retention import Retention
from services.lib.store.schema import COMMITMENT_TABLE, FORECAST_TABLES, PERIOD_TIMESTAMPS, TARIFF_TABLE, Table
from services.vector.sql import tariff_sql, vector_kinds, vector_rows_sql, vector_sql, vector_stream_sql
from services.vector.staircase import Staircases
from services.vector.write import TariffWriter, VectorWriter
from storecast.catalog import COMMITMENT, FORECAST_BY_ENUM, FORECAST_TYPES, TARIFF, TIMESTAMP_LIMIT_MS, Kind, RecordType
from storecast.status import ApiFailure, ApiStatus
from storecast.v1 import records_pb2, vector_pb2, vector_pb2_grpc

VectorRequest = vector_pb2.GetForecastRequest | vector_pb2.GetCommitmentRequest
PutRequest = vector_pb2.PutForecastRequest | vector_pb2.PutCommitmentRequest | vector_pb2.PutTariffRequest


def _forecast_type(enum_value: int) -> RecordType:
    forecast = FORECAST_BY_ENUM.get(enum_value)
    if forecast is None:
        raise ApiFailure(ApiStatus.INVALID_TYPE, f"unknown forecast type {enum_value}")
    return forecast


# Every vector-category row is keyed by its first three insert columns:
# (site_id, id, creation_timestamp) for vectors, (site_id, id, timestamp) for tariff periods.
_KEY_COLUMNS = (0, 1, 2)


class VectorService(vector_pb2_grpc.VectorServicer):
    def __init__(
        self, store: Store, max_records: int, batching: BatchSettings, retention: Retention, recent: RecentReads | None = None
    ) -> None:
        # The ingest's recent writes: horizon errors read production records as actuals.
        self._recent = recent
        self._store = store
        self._max_records = max_records
        self._batching = batching
        self._known_ids = KnownIds()
        self._staircases = Staircases(store, self._known_ids, max_records, retention)
        self._forecast_writers = {t.enum_value: VectorWriter(FORECAST_TABLES[name], t) for name, t in FORECAST_TYPES.items()}
        self._commitment_writer = VectorWriter(COMMITMENT_TABLE, COMMITMENT)
        self._tariff_writer = TariffWriter(TARIFF_TABLE, TARIFF)
        writers: list[VectorWriter | TariffWriter] = [
            *self._forecast_writers.values(),
            self._commitment_writer,
            self._tariff_writer,
        ]
        self._committers = {writer.table.name: self._committer(writer.table, writer.column_names) for writer in writers}
        self._written = {
            FORECAST_TABLES[t.name].name: _Written(self._forecast_writers[t.enum_value], "forecast", t.name)
            for t in FORECAST_TYPES.values()
        }
        self._written[COMMITMENT_TABLE.name] = _Written(self._commitment_writer, "commitment", "")
        self._written[TARIFF_TABLE.name] = _Written(self._tariff_writer, "tariff", "")

    def _committer(self, table: Table, column_names: list[str]) -> Committer:
        name = self._store.table(table.name)
        settings = self._batching.insert_settings()

        def insert(columns: Columns) -> None:
            # clickhouse-connect's column-oriented insert takes sequences (arrays, of typed input, become lists).
            data = [column.tolist() if isinstance(column, np.ndarray) else column for column in columns]
            with store_insert(), self._store.client() as client:
                client.insert(name, data, column_names=column_names, column_oriented=True, settings=settings)

        return Committer(table.name, insert, _KEY_COLUMNS, self._batching)

    def PutForecast(self, request: vector_pb2.PutForecastRequest, context: grpc.ServicerContext) -> records_pb2.PutReply:
        writer = self._forecast_writers[_forecast_type(request.forecast_type).enum_value]
        return self._store_rows(writer.table, _request_columns(writer, request))

    def PutCommitment(self, request: vector_pb2.PutCommitmentRequest, context: grpc.ServicerContext) -> records_pb2.PutReply:
        writer = self._commitment_writer
        return self._store_rows(writer.table, _request_columns(writer, request))

    def PutTariff(self, request: vector_pb2.PutTariffRequest, context: grpc.ServicerContext) -> records_pb2.PutReply:
        writer = self._tariff_writer
        return self._store_rows(writer.table, _request_columns(writer, request))

    def GetForecast(self, request: vector_pb2.GetForecastRequest, context: grpc.ServicerContext) -> records_pb2.Records:
        return _records(self._forecast_read(request), request.format)

    def GetCommitment(self, request: vector_pb2.GetCommitmentRequest, context: grpc.ServicerContext) -> records_pb2.Records:
        return _records(self._commitment_read(request), request.format)

    def GetTariff(self, request: vector_pb2.GetTariffRequest, context: grpc.ServicerContext) -> records_pb2.Records:
        return _records(self._tariff_read(request), request.format)

    @on_worker_threads
    def StreamForecast(
        self, request: vector_pb2.GetForecastRequest, context: grpc.ServicerContext
    ) -> Iterator[records_pb2.RecordBatch]:
        return _stream(self._forecast_read(request))

    @on_worker_threads
    def StreamCommitment(
        self, request: vector_pb2.GetCommitmentRequest, context: grpc.ServicerContext
    ) -> Iterator[records_pb2.RecordBatch]:
        return _stream(self._commitment_read(request))

    @on_worker_threads
    def StreamTariff(
        self, request: vector_pb2.GetTariffRequest, context: grpc.ServicerContext
    ) -> Iterator[records_pb2.RecordBatch]:
        return _stream(self._tariff_read(request))

    def GetStaircase(self, request: vector_pb2.GetStaircaseRequest, context: grpc.ServicerContext) -> records_pb2.Records:
        return self._staircases.staircase(request)

    def GetHorizonErrors(self, request: vector_pb2.GetHorizonErrorsRequest, context: grpc.ServicerContext) -> records_pb2.Records:
        if self._recent is not None:
            self._recent.sync_all()  # the actuals: production records the ingest may not have stored yet
        return self._staircases.horizon_errors(request)

    def _forecast_read(self, request: vector_pb2.GetForecastRequest) -> _VectorRead:
        forecast = _forecast_type(request.forecast_type)
        return self._vector_read(FORECAST_TABLES[forecast.name], forecast, request, f"{forecast.name} forecast")

    def _commitment_read(self, request: vector_pb2.GetCommitmentRequest) -> _VectorRead:
        return self._vector_read(COMMITMENT_TABLE, COMMITMENT, request, "commitment")

    def _vector_read(self, layout: Table, record_type: RecordType, request: VectorRequest, what: str) -> _VectorRead:
        window = check_window(
            request.range if request.HasField("range") else None,
            request.aggregation,
            request.period_ms if request.HasField("period_ms") else None,
        )
        vintage = check_vintage(
            request.generated if request.HasField("generated") else None,
            request.generate_all if request.HasField("generate_all") else None,
        )
        table = self._store.table(layout.name)
        read = (
            RECORDS_READ.labels("commitment", "")
            if record_type is COMMITMENT
            else RECORDS_READ.labels("forecast", record_type.name)
        )
        place = _Place(self._store, self._known_ids, table, request.site_id, request.id, what, read)
        return _VectorRead(place, record_type, window, vintage, record_limit(request.max_records, self._max_records))

    def _tariff_read(self, request: vector_pb2.GetTariffRequest) -> _TariffRead:
        window = check_window(request.range if request.HasField("range") else None, records_pb2.AGGREGATION_UNSPECIFIED, None)
        table = self._store.table(TARIFF_TABLE.name)
        place = _Place(
            self._store, self._known_ids, table, request.site_id, request.id, "tariff", RECORDS_READ.labels("tariff", "")
        )
        return _TariffRead(place, window, record_limit(request.max_records, self._max_records))

    def _store_rows(self, table: Table, columns: Columns) -> records_pb2.PutReply:
        charge_records(len(columns[0]))
        self._committers[table.name].store(columns)
        self._written[table.name].count(columns)
        return records_pb2.PutReply(stored=len(columns[0]))


class _Written:
    """The written counters of one table: periods, and vectors (rows) but for tariffs, whose rows are periods."""

    def __init__(self, writer: VectorWriter | TariffWriter, category: str, kind: str) -> None:
        self._periods = RECORDS_WRITTEN.labels(category, kind)
        self._vectors = VECTORS_WRITTEN.labels(category, kind) if isinstance(writer, VectorWriter) else None
        self._period_timestamps = writer.column_names.index(PERIOD_TIMESTAMPS) if self._vectors is not None else None

    def count(self, columns: Columns) -> None:
        if self._vectors is None or self._period_timestamps is None:
            self._periods.inc(len(columns[0]))
            return
        self._vectors.inc(len(columns[0]))
        # One length per vector, not per period.
        self._periods.inc(sum(map(len, columns[self._period_timestamps])))


@dataclass(frozen=True, slots=True)
class _Place:
    """The table, site and id a read is of, and what it reads (for 1107's message)."""

    store: Store
    known_ids: KnownIds
    table: str
    site_id: int
    id: int
    what: str
    read: Counter  # records (periods) read

    def query(self, sql: str, fmt: str, **parameters: int | None) -> bytes:
        with store_query(), self.store.client() as client:
            return client.raw_query(sql, {"site_id": self.site_id, "id": self.id, **parameters}, fmt=fmt)

    def stream(self, sql: str, rows: int, **parameters: int | None) -> Iterator[pa.Table]:
        """The result of one query, streamed from the engine in tables of `rows` rows."""
        bound = {"site_id": self.site_id, "id": self.id, **parameters}
        with store_query(), self.store.client() as client, client.query_arrow_stream(sql, bound) as blocks:
            yield from typed.rechunked(blocks, rows)

    def known(self, found: bool) -> None:
        """1107 when a read found nothing and nothing was ever stored under its id."""
        if found:
            self.known_ids.add(self.table, self.site_id, self.id)
            return
        with store_query(), self.store.client() as client:
            self.known_ids.check(client, self.table, self.site_id, self.id, self.what)


@dataclass(frozen=True, slots=True)
class _VectorRead:
    """The selected vectors of one id, their periods in the window, at most `limit` periods per read."""

    place: _Place
    record_type: RecordType
    window: Window
    vintage: Vintage
    limit: int

    def _parameters(self, window: Window) -> dict[str, int | None]:
        return {
            "start": window.start,
            "end": window.end,
            "generated_start": self.vintage.start,
            "generated_end": self.vintage.end,
        }

    def records(self, fmt: records_pb2.ResultFormat.ValueType) -> records_pb2.Records:
        if fmt == records_pb2.BATCH:
            batch, next_from = self.batch(self.window)
            return records_pb2.Records(batch=batch, count=len(batch.timestamps), next_from=next_from)
        sql = vector_sql(self.place.table, self.record_type, self.window, self.vintage, self.limit)
        line = self.place.query(sql, "TabSeparatedRaw", **self._parameters(self.window))
        count, cut, results = line.rstrip(b"\n").split(b"\t", 2)
        self.place.known(bool(results))
        return records_pb2.Records(results_json=b"[" + results + b"]", count=int(count), next_from=int(cut) if cut else None)

    def batch(self, window: Window) -> tuple[records_pb2.RecordBatch, int | None]:
        sql = vector_rows_sql(self.place.table, self.record_type, window, self.vintage, self.limit)
        table = typed.read_arrow(self.place.query(sql, "ArrowStream", **self._parameters(window)))
        self.place.known(table is not None)
        if table is None:
            return records_pb2.RecordBatch(), None
        stamps, ends = typed.flattened(table.column("timestamp"))
        batch = records_pb2.RecordBatch(
            timestamps=typed.numbers(stamps, np.int64),
            ids=[self.place.id] * table.num_rows,
            creation_timestamps=typed.numbers(table.column("creation_timestamp"), np.int64),
            period_ends=ends,
        )
        for attribute, kind in zip(self.record_type.attributes, vector_kinds(self.record_type, window)):
            batch.columns.append(typed.column(attribute.name, kind, typed.flattened(table.column(attribute.name))[0]))
        for attribute in self.record_type.vector_attributes:
            batch.entry_columns.append(typed.column(attribute.name, attribute.kind, table.column(attribute.name)))
        cut = int(table.column("cut")[0].as_py())
        return batch, cut if cut < TIMESTAMP_LIMIT_MS else None

    def stream(self) -> Iterator[records_pb2.RecordBatch]:
        """Every period of the selected vectors from one engine query, cut into batches of
        `limit` periods; a long vector spans batches, each naming it with its creation_timestamp."""
        sql = vector_stream_sql(self.place.table, self.record_type, self.window, self.vintage)
        kinds = vector_kinds(self.record_type, self.window)
        found = False
        for table in self.place.stream(sql, self.limit, **self._parameters(self.window)):
            if not found:
                self.place.known(True)
                found = True
            yield from self._period_batches(table, kinds)
        if not found:
            self.place.known(False)

    def _period_batches(self, vectors: pa.Table, kinds: list[Kind]) -> Iterator[records_pb2.RecordBatch]:
        stamps, ends = typed.flattened(vectors.column("timestamp"))
        owners = np.repeat(np.arange(vectors.num_rows), np.diff(ends, prepend=0))
        periods = {a.name: typed.flattened(vectors.column(a.name))[0] for a in self.record_type.attributes}
        creation = typed.numbers(vectors.column("creation_timestamp"), np.int64)
        for start in range(0, len(owners), self.limit):
            rows = slice(start, start + self.limit)
            entries, counts = np.unique(owners[rows], return_counts=True)
            batch = records_pb2.RecordBatch(
                timestamps=typed.numbers(stamps[rows], np.int64),
                ids=[self.place.id] * len(entries),
                creation_timestamps=creation[entries],
                period_ends=np.cumsum(counts),
            )
            for attribute, kind in zip(self.record_type.attributes, kinds):
                batch.columns.append(typed.column(attribute.name, kind, periods[attribute.name][rows]))
            for attribute in self.record_type.vector_attributes:
                values = vectors.column(attribute.name).take(entries)
                batch.entry_columns.append(typed.column(attribute.name, attribute.kind, values))
            yield batch


@dataclass(frozen=True, slots=True)
class _TariffRead:
    """The periods of one tariff in force during the window, at most `limit` per read."""

    place: _Place
    window: Window
    limit: int

    def _query(self, window: Window, fmt: str, *, columns: bool) -> bytes:
        # One period more than the limit tells whether the response is partial.
        sql = tariff_sql(self.place.table, TARIFF, window, self.limit + 1, columns=columns)
        return self.place.query(sql, fmt, start=window.start, end=window.end)

    def records(self, fmt: records_pb2.ResultFormat.ValueType) -> records_pb2.Records:
        if fmt == records_pb2.BATCH:
            batch, next_from = self.batch(self.window)
            return records_pb2.Records(batch=batch, count=len(batch.timestamps), next_from=next_from)
        rendered = limit_array(self._query(self.window, JSON_ARRAY_FORMAT, columns=False), self.limit)
        self.place.known(rendered.count > 0)
        if rendered.count == 0:
            return records_pb2.Records(results_json=b"[]", count=0)
        next_from = None if rendered.first_left_out is None else leading_timestamp(rendered.first_left_out)
        results = b'[{"id":%d,"values":%s}]' % (self.place.id, rendered.results)
        return records_pb2.Records(results_json=results, count=rendered.count, next_from=next_from)

    def batch(self, window: Window) -> tuple[records_pb2.RecordBatch, int | None]:
        table = typed.read_arrow(self._query(window, "ArrowStream", columns=True))
        self.place.known(table is not None)
        if table is None:
            return records_pb2.RecordBatch(), None
        next_from = None
        if table.num_rows > self.limit:
            next_from = int(table.column("timestamp")[self.limit].as_py())
            table = table.slice(0, self.limit)
        return self._to_batch(table), next_from

    def stream(self) -> Iterator[records_pb2.RecordBatch]:
        """Every period of the window from one engine query, streamed through in batches of `limit`."""
        sql = tariff_sql(self.place.table, TARIFF, self.window, None, columns=True)
        found = False
        for table in self.place.stream(sql, self.limit, start=self.window.start, end=self.window.end):
            if not found:
                self.place.known(True)
                found = True
            yield self._to_batch(table)
        if not found:
            self.place.known(False)

    def _to_batch(self, table: pa.Table) -> records_pb2.RecordBatch:
        batch = records_pb2.RecordBatch(
            timestamps=typed.numbers(table.column("timestamp"), np.int64), ids=[self.place.id], period_ends=[table.num_rows]
        )
        for attribute in TARIFF.attributes:
            batch.columns.append(typed.column(attribute.name, attribute.kind, table.column(attribute.name)))
        return batch


def _records(read: _VectorRead | _TariffRead, fmt: records_pb2.ResultFormat.ValueType) -> records_pb2.Records:
    records = read.records(fmt)
    read.place.read.inc(records.count)
    return records


def _stream(read: _VectorRead | _TariffRead) -> Iterator[records_pb2.RecordBatch]:
    for batch in read.stream():
        read.place.read.inc(len(batch.timestamps))
        yield batch


def _request_columns(writer: VectorWriter | TariffWriter, request: PutRequest) -> Columns:
    if request.HasField("batch"):
        return writer.batch_columns(request.site_id, request.batch)
    return writer.columns(request.site_id, request.v1_json)


def register(
    store: Store, max_records: int, batching: BatchSettings, retention: Retention, recent: RecentReads | None = None
) -> Registration:
    def add(server: grpc.aio.Server) -> str:
        vector_pb2_grpc.add_VectorServicer_to_server(VectorService(store, max_records, batching, retention, recent), server)
        return vector_pb2.DESCRIPTOR.services_by_name["Vector"].full_name

    return add
