"""The query service: production records over a range, raw or aggregated."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial

import grpc
import numpy as np
import pyarrow as pa
from clickhouse_connect.driver.client import Client
from prometheus_client import Counter

from services.lib.reads import plan
from services.lib.reads.newest import NewestRecords, TrackedSeries
from services.lib.reads.pending import PendingSpans
from services.lib.reads.render import (
    JSON_ARRAY_FORMAT,
    JSON_LINES_FORMAT,
    ArrayPieces,
    RenderedArray,
    leading_timestamp,
    limit_array,
)
from services.lib.reads.rollup import resolution_for
from services.lib.reads.window import Window, production_window, record_limit
from services.lib.recent.answer import RecentReads
from services.lib.records import typed
from services.lib.rpc.metrics import (
    HOT_TIER_READS,
    PENDING_LOOKUPS_IN_MEMORY,
    PENDING_LOOKUPS_IN_STORE,
    RECORDS_READ,
    store_query,
)
from services.lib.rpc.server import Context, Registration, on_worker_threads
from services.lib.store.engine import Store
from services.lib.store.keys import KnownIds, newest_timestamps
from services.lib.store.retention import Retention
from services.lib.store.schema import PENDING_TABLE, PRODUCTION_TABLES, ROLLUP_TABLES
from services.query.answer_cache import AnswerCache
from services.query.gathered import GATHERED_SPAN_MS, GatheredReads, WantedRange
from services.query.promql import service as promql
from services.query.promql.select import Reader
from services.query.sql import (
    PYTHON_RENDERED_BUCKETS,
    bucket_cut_sql,
    cells_json,
    cells_json_sql,
    production_members,
    production_sql,
)
from storecast.aggregations import AGGREGATIONS, spelled
from storecast.catalog import EQUIPMENT_BY_ENUM, TIMESTAMP_LIMIT_MS, Kind, RecordType
from storecast.status import ApiFailure, ApiStatus, to_api_error
from storecast.v1 import query_pb2, query_pb2_grpc, records_pb2

_FROM_MEMORY = HOT_TIER_READS.labels("production", "memory")
_FROM_STORE = HOT_TIER_READS.labels("production", "store")
# The aggregations rollup cells answer: the only ones past the raw records' retention.
_FROM_CELLS = spelled([a.name for a in AGGREGATIONS.values() if a.cells is not None])
# The most a streamed read's piece holds; each is a gRPC message, and the gateway sends it on as it comes.
_PIECE_BYTES = 256 * 1024
# Blocks the engine renders one at a time, so that its first pieces leave while it renders the rest.
_STREAM_SETTINGS = " SETTINGS max_block_size = 4096"


class QueryService(query_pb2_grpc.QueryServicer):
    def __init__(
        self,
        store: Store,
        max_records: int,
        retention: Retention,
        *,
        rollups: bool = True,
        recent: RecentReads | None = None,
        marks: PendingSpans | None = None,
        answer_cache_bytes: int = 0,
    ) -> None:
        self._store = store
        # The ingest's recent writes: in this process, or its replicas' (services/server.py). None: the log is off.
        self._recent = recent
        # The ingest's rollup marks, on the embedded store, which only this process writes (services/server.py).
        self._marks = marks
        # Answers of settled reads, kept while no insert changes their range: only where this process
        # hears of every insert of the store (its own marks).
        self._answers: AnswerCache | None = None
        if marks is not None and answer_cache_bytes > 0:
            self._answers = AnswerCache(answer_cache_bytes)
            marks.watch(self._answers)
        self._newest: NewestRecords | None = None
        if marks is not None:
            self._newest = NewestRecords()
            marks.watch(self._newest)
        self._gathered = GatheredReads(store)
        self._rollups = rollups
        self._max_records = max_records
        self._retention = retention
        self._known_ids = KnownIds()

    async def GetProduction(self, request: query_pb2.GetProductionRequest, context: Context) -> records_pb2.Records:
        """On the event loop when memory holds a small answer; on a thread when the read waits for
        a flush or the store."""
        read = self._read(request)
        if request.format == records_pb2.V1_JSON:
            at_once = read.from_memory_at_once()
            if at_once is not None:
                return at_once
        return await asyncio.to_thread(self._get, read)

    async def GetProductionAtOnce(
        self, request: query_pb2.GetProductionManyRequest, context: Context
    ) -> query_pb2.GetProductionManyReply:
        return query_pb2.GetProductionManyReply(outcomes=[self._at_once(read) for read in request.reads])

    def _at_once(self, request: query_pb2.GetProductionRequest) -> query_pb2.ReadOutcome:
        """A read's answer if memory holds it at once, its refusal, or nothing (the store's to answer)."""
        try:
            read = self._read(request)
        except ApiFailure as failure:
            return query_pb2.ReadOutcome(error=to_api_error(failure))
        at_once = read.from_memory_at_once() if request.format == records_pb2.V1_JSON else None
        return query_pb2.ReadOutcome() if at_once is None else query_pb2.ReadOutcome(records=at_once)

    def _get(self, read: _ProductionRead) -> records_pb2.Records:
        request = read.request
        if request.format == records_pb2.V1_JSON:
            remembered = read.from_memory_or_sync()
            if remembered is not None:
                return remembered
            answer = self._kept_or_read(read)
        else:
            read.sync(read.window)
            if request.format == records_pb2.BATCH:
                batch, next_from = read.batch(read.window)
                answer = records_pb2.Records(batch=batch, count=len(batch.timestamps), next_from=next_from)
            else:
                answer = self._json(read)
        read.counted(answer.count)
        return answer

    def _kept_or_read(self, read: _ProductionRead) -> records_pb2.Records:
        """The JSON answer kept for this very read (services/query/answer_cache.py), or the store's."""
        start, end = read.window.start, read.window.end
        if self._answers is None or start is None or end is None:
            return self._json(read)
        request = read.request
        series = (read.table, request.site_id, request.id)
        key = request.SerializeToString(deterministic=True)
        return self._answers.answer(key, series, start, end, read.horizon, partial(self._json, read))

    @staticmethod
    def _json(read: _ProductionRead) -> records_pb2.Records:
        rendered, next_from = read.json()
        return records_pb2.Records(results_json=rendered.results, count=rendered.count, next_from=next_from)

    @on_worker_threads
    def StreamProductionJson(
        self, request: query_pb2.GetProductionRequest, context: grpc.ServicerContext
    ) -> Iterator[query_pb2.JsonPiece]:
        read = self._read(request)
        answer = read.from_memory_or_sync()
        if answer is None and read.window.aggregation is not None:
            answer = self._json(read)  # at most max_records buckets, from one query: nothing to stream
            read.counted(answer.count)
        if answer is None:
            yield from read.json_pieces()
            return
        next_from = answer.next_from if answer.HasField("next_from") else None
        yield query_pb2.JsonPiece(json=answer.results_json, next_from=next_from)
        yield query_pb2.JsonPiece(count=answer.count)

    @on_worker_threads
    def StreamProduction(
        self, request: query_pb2.GetProductionRequest, context: grpc.ServicerContext
    ) -> Iterator[records_pb2.RecordBatch]:
        read = self._read(request)
        read.sync(read.window)
        for batch in read.stream():
            read.counted(len(batch.timestamps))
            yield batch

    def PromQuery(self, request: query_pb2.PromQueryRequest, context: grpc.ServicerContext) -> query_pb2.PromQueryReply:
        return promql.query(self._prom_reader(request.sites), request)

    def PromSeries(self, request: query_pb2.PromSeriesRequest, context: grpc.ServicerContext) -> query_pb2.PromSeriesReply:
        return promql.series(self._prom_reader(request.sites), request)

    def _prom_reader(self, sites: query_pb2.SiteScope) -> Reader:
        """A reader across series: every acknowledged record in the store first, so a record just written is seen."""
        if self._recent is not None:
            self._recent.sync_all()
        return Reader(self._store, self._retention, promql.scope_of(sites), rollups=self._rollups, marks=self._marks)

    def _read(self, request: query_pb2.GetProductionRequest) -> _ProductionRead:
        equipment = EQUIPMENT_BY_ENUM.get(request.equipment_type)
        if equipment is None:
            raise ApiFailure(ApiStatus.INVALID_TYPE, f"unknown equipment type {request.equipment_type}")
        window = production_window(request)
        limit = record_limit(request.max_records, self._max_records)
        horizon = self._retention.horizon_ms("production", equipment.name)
        if window.start is not None and window.start < horizon and not (self._rollups and resolution_for(window) is not None):
            days = self._retention.days_of("production", equipment.name)
            past = (
                f"past them only {_FROM_CELLS} aggregations whose period is a multiple of 1 min are answered, from rollups"
                if self._rollups
                else "rollups are off (STORECAST_ROLLUPS=0), so nothing past them is answered"
            )
            raise ApiFailure(
                ApiStatus.INVALID_PARAMETERS, f"from is older than the {days} days {equipment.name} records are kept; {past}"
            )
        return _ProductionRead(
            self._store,
            self._known_ids,
            request,
            equipment,
            window,
            limit,
            horizon,
            self._rollups,
            self._recent,
            self._marks,
            self._gathered,
            self._newest,
        )


@dataclass(frozen=True, slots=True)
class _ProductionRead:
    """One equipment's records over a window, at most `limit` per read."""

    store: Store
    known_ids: KnownIds
    request: query_pb2.GetProductionRequest
    equipment: RecordType
    window: Window
    limit: int
    horizon: int  # the oldest timestamp kept (retention)
    rollups: bool
    recent: RecentReads | None
    # The rollup marks as this process's ingest writes them, when it is the store's one writer.
    marks: PendingSpans | None
    gathered: GatheredReads
    # The newest stored timestamp of each series read, where its marks tell this process of every insert.
    newest: NewestRecords | None

    def from_memory_at_once(self) -> records_pb2.Records | None:
        """The answer from the hot tier when it is at hand without waiting (RecentReads.answer_at_once)."""
        if self.recent is None:
            return None
        answer = self.recent.answer_at_once(self.equipment, self.request, self.window, self.horizon, self.limit)
        if answer is not None:
            _FROM_MEMORY.inc()
            self.counted(answer.count)
        return answer

    def from_memory_or_sync(self) -> records_pb2.Records | None:
        """The answer from the hot tier, when it provably holds every record of the window; else
        None, once every acknowledged record of the window is in the store."""
        if self.recent is None:
            return None
        answer = self.recent.answer_or_sync(self.equipment, self.request, self.window, self.horizon, self.limit)
        (_FROM_STORE if answer is None else _FROM_MEMORY).inc()
        if answer is not None:
            self.counted(answer.count)
        return answer

    def sync(self, window: Window | None = None) -> None:
        """Every acknowledged record of the window (None: of the series) in the store before the engine reads it."""
        if self.recent is not None:
            self.recent.sync(self.equipment, self.request, window)

    def json(self) -> tuple[RenderedArray, int | None]:
        wanted = self._gatherable()
        if wanted is None:
            rendered = limit_array(self._query(self.window, JSON_ARRAY_FORMAT, columns=False), self.limit)
        else:
            rendered = self.gathered.read(self.table, self.equipment, wanted)
        self._known(rendered.count > 0)
        next_from = None if rendered.first_left_out is None else leading_timestamp(rendered.first_left_out)
        return rendered, next_from

    def _gatherable(self) -> WantedRange | None:
        """The read as one that may share its query with others (services/query/gathered.py): raw, and short."""
        start, end = self.window.start, self.window.end
        if self.window.aggregation is not None or start is None or end is None or end - start > GATHERED_SPAN_MS:
            return None
        return WantedRange(self.request.site_id, self.request.id, max(start, self.horizon), end, self.limit)

    def json_pieces(self) -> Iterator[query_pb2.JsonPiece]:
        """json()'s answer of an unaggregated read, in pieces as the engine renders them, the
        first once the answer is known to be one (1107 comes instead of it), then its count."""
        window, parameters, next_from = self._first_records()
        sql = production_sql(self.table, self.equipment, window, None) + _STREAM_SETTINGS
        with store_query(), self.store.client() as client, client.raw_stream(sql, parameters, fmt=JSON_LINES_FORMAT) as lines:
            array = ArrayPieces(partial(lines.read, _PIECE_BYTES))
            pieces = iter(array)
            first = next(pieces)
            if array.count:
                self._known(True)
                yield query_pb2.JsonPiece(json=first, next_from=next_from)
                for piece in pieces:
                    yield query_pb2.JsonPiece(json=piece)
        if not array.count:
            self._known(False)
            yield query_pb2.JsonPiece(json=first)
        self.counted(array.count)
        yield query_pb2.JsonPiece(count=array.count)

    def _first_records(self) -> tuple[Window, dict[str, int | None], int | None]:
        """The window of the first `limit` records, its query parameters, and the timestamp of
        the record after them (None: there is none), as json()'s LIMIT limit + 1 finds it."""
        parameters = self._parameters(self.window)
        start = 0 if self.window.start is None else self.window.start
        end = TIMESTAMP_LIMIT_MS if self.window.end is None else self.window.end
        if end - start <= self.limit:  # a record per millisecond at most
            return self.window, parameters, None
        bounded = {**parameters, "start": start, "end": end}
        with store_query(), self.store.client() as client:
            cut = client.raw_query(bucket_cut_sql(self.table, 1, self.limit), bounded, fmt="TabSeparatedRaw").strip()
        if not cut:
            return self.window, parameters, None
        return Window(start, int(cut), None, None), {**bounded, "end": int(cut)}, int(cut)

    def batch(self, window: Window) -> tuple[records_pb2.RecordBatch, int | None]:
        table = typed.read_arrow(self._query(window, "ArrowStream", columns=True))
        self._known(table is not None)
        if table is None:
            return records_pb2.RecordBatch(), None
        next_from = None
        if table.num_rows > self.limit:
            next_from = int(table.column("timestamp")[self.limit].as_py())
            table = table.slice(0, self.limit)
        return self._to_batch(table, window), next_from

    def stream(self) -> Iterator[records_pb2.RecordBatch]:
        """Every record of the window from one engine query, whose blocks stream through in
        batches of `limit`: each record is read once, however many batches there are."""
        parameters = self._parameters(self.window)
        found = False
        with store_query(), self.store.client() as client:
            cells = self._plan(client, self.window, parameters)
            sql = production_sql(self.table, self.equipment, self.window, None, columns=True, rollup=self._rollup, plan=cells)
            with client.query_arrow_stream(sql, parameters) as blocks:
                for table in typed.rechunked(blocks, self.limit):
                    if not found:
                        self._known(True)
                        found = True
                    yield self._to_batch(table, self.window)
        if not found:
            self._known(False)

    def _to_batch(self, table: pa.Table, window: Window) -> records_pb2.RecordBatch:
        batch = records_pb2.RecordBatch(
            timestamps=typed.numbers(table.column("timestamp"), np.int64), ids=typed.numbers(table.column("id"), np.uint32)
        )
        for member in production_members(self.equipment, window)[2:]:
            batch.columns.append(typed.column(member.key, member.kind or Kind.UNSIGNED_INT, table.column(member.key)))
        return batch

    @property
    def table(self) -> str:
        return self.store.table(PRODUCTION_TABLES[self.equipment.name].name)

    def _parameters(self, window: Window) -> dict[str, int | None]:
        return {
            "site_id": self.request.site_id,
            "id": self.request.id,
            "start": window.start,
            "end": window.end,
            "horizon": self.horizon,
        }

    @property
    def _pending(self) -> str:
        return self.store.table(PENDING_TABLE.name)

    @property
    def _rollup(self) -> str | None:
        return self.store.table(ROLLUP_TABLES[self.equipment.name].name) if self.rollups else None

    def _newest_stored(self, client: Client) -> int | None:
        series = (self.request.site_id, self.request.id)
        return newest_timestamps(client, self.table, [series])[series]

    def counted(self, records: int) -> None:
        RECORDS_READ.labels("production", self.equipment.name).inc(records)

    def _known(self, found: bool) -> None:
        """1107 when a read found nothing and nothing was ever stored under its id."""
        site_id, record_id = self.request.site_id, self.request.id
        if found:
            self.known_ids.add(self.table, site_id, record_id)
            return
        # An id whose only records still wait for a flush is known too.
        self.sync()
        with store_query(), self.store.client() as client:
            self.known_ids.check(client, self.table, site_id, record_id, f"{self.equipment.name} record")

    def _query(self, window: Window, fmt: str, *, columns: bool) -> bytes:
        """limit + 1 records: one more tells whether the response is partial."""
        table = self.table
        parameters = self._parameters(window)
        with store_query(), self.store.client() as client:
            if window.period_ms is not None and window.bucket_count() > self.limit:
                # GROUP BY holds every bucket of the range: a year of seconds would be 31M.
                # Ending the range just after the first record of the bucket after the
                # limit keeps it to limit + 1, the last of which is cut off.
                cut = client.raw_query(bucket_cut_sql(table, window.period_ms, self.limit), parameters, fmt="TabSeparatedRaw")
                if cut:
                    parameters["end"] = int(cut) + 1

            def answer_of(cells: plan.CellsPlan | None) -> bytes:
                if (
                    cells is not None
                    and fmt == JSON_ARRAY_FORMAT
                    and not columns
                    and self._rollup is not None
                    and window.bucket_count() <= PYTHON_RENDERED_BUCKETS
                ):
                    merged = cells_json_sql(table, self._rollup, self.equipment, window, cells, self.limit + 1)
                    return cells_json(client, merged, parameters, self.equipment, window, self.request.id)
                sql = production_sql(
                    table, self.equipment, window, self.limit + 1, columns=columns, rollup=self._rollup, plan=cells
                )
                return client.raw_query(sql, parameters, fmt=fmt)

            tracked = None
            if self.newest is not None and self._rollup is not None and resolution_for(window) is not None:
                tracked = self.newest.track(table, self.request.site_id, self.request.id)
            version = None if tracked is None else tracked.version
            cells = self._plan(client, window, parameters, tracked)
            answer = answer_of(cells)
            if tracked is not None and tracked.version != version and _past_end(cells, parameters["end"]):
                answer = answer_of(self._plan(client, window, parameters))  # an insert past the end may be in them
            return answer

    def _plan(
        self, client: Client, window: Window, parameters: dict[str, int | None], tracked: TrackedSeries | None = None
    ) -> plan.CellsPlan | None:
        """The cells plan, if the window's aggregation is cheaper from rollup cells than from its records;
        with `tracked`, cells past the range's end if no stored record is (services/lib/reads/newest.py)."""
        resolution = resolution_for(window)
        if self._rollup is None or resolution is None:
            return None
        start, end = parameters["start"], parameters["end"]
        marks, table = self.marks, self.table
        if marks is not None and marks.known and start is not None and end is not None:
            pending = _counted(
                PENDING_LOOKUPS_IN_MEMORY, partial(marks.first_pending, table, self.request.site_id, self.request.id, start, end)
            )
        else:
            pending = _counted(PENDING_LOOKUPS_IN_STORE, partial(plan.first_pending, client, self._pending, table, parameters))
        newest = None
        if tracked is not None and self.newest is not None:
            newest = partial(self.newest.newest, tracked, partial(self._newest_stored, client))
        return plan.choose(
            pending,
            start,
            end,
            resolution=resolution,
            attributes=len(self.equipment.attributes),
            past_records=start is not None and start < self.horizon,
            newest=newest,
        )


def _past_end(cells: plan.CellsPlan | None, end: int | None) -> bool:
    """Whether the plan takes cells past the range's end (services/lib/reads/newest.py)."""
    return cells is not None and end is not None and cells.takes_cells_past(end)


def _counted(lookups: Counter, lookup: Callable[[], int | None]) -> Callable[[], int | None]:
    def counted() -> int | None:
        lookups.inc()
        return lookup()

    return counted


def register(
    store: Store,
    max_records: int,
    retention: Retention,
    *,
    rollups: bool = True,
    recent: RecentReads | None = None,
    marks: PendingSpans | None = None,
    answer_cache_bytes: int = 0,
) -> Registration:
    def add(server: grpc.aio.Server) -> str:
        service = QueryService(
            store, max_records, retention, rollups=rollups, recent=recent, marks=marks, answer_cache_bytes=answer_cache_bytes
        )
        query_pb2_grpc.add_QueryServicer_to_server(service, server)
        return query_pb2.DESCRIPTOR.services_by_name["Query"].full_name

    return add
