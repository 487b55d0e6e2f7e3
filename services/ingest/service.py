"""The ingest service: validates and stores production records."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

import grpc
import numpy as np

from services.ingest.flusher import Flusher, Records
from services.ingest.wal import LogFull, WriteAheadLog
from services.lib.config import LogSettings
from services.lib.reads.pending import PendingSpans
from services.lib.reads.rollup import (
    Maintainer,
    RollupOf,
    kept_spans,
    mark_rollups_stale,
    new_token,
    pending_sql,
    touched_spans,
)
from services.lib.reads.window import production_window
from services.lib.recent.answer import from_memory
from services.lib.recent.hot import HotTier, SeriesKey
from services.lib.records import payload, typed
from services.lib.records.columns import Columns, last_occurrences, take
from services.lib.records.group_commit import BatchSettings, Committer
from services.lib.rpc.admission import charge_records
from services.lib.rpc.metrics import RECORDS_WRITTEN, ROLLUP_SPANS_MARKED, store_insert, store_query
from services.lib.rpc.server import Context, Registration
from services.lib.store import native
from services.lib.store.engine import Store
from services.lib.store.keys import newest_timestamps
from services.lib.store.retention import Retention
from services.lib.store.schema import PENDING_TABLE, PRODUCTION_TABLES, ROLLUP_TABLES, Table
from storecast.catalog import EQUIPMENT_BY_ENUM, EQUIPMENT_TYPES, RecordType
from storecast.env import setting
from storecast.memory import return_freed_memory
from storecast.status import ApiFailure, ApiStatus, to_api_error
from storecast.v1 import ingest_pb2, ingest_pb2_grpc, records_pb2

log = logging.getLogger("storecast.ingest")

# Blocks reach the store with unique keys (deduplicated per request, then per
# batch), so ClickHouse need not merge them on insert. Not so when the server
# gathers the PUTs (batch modes "server" and "both"): it must keep the last of a key.
_UNIQUE_KEYS_SETTINGS = {"optimize_on_insert": 0}
# A PUT body up to this size is decoded on the event loop (about 0.3 ms for JSON), a larger one on a thread.
_DECODED_ON_THE_LOOP_BYTES = 64 * 1024
# Columns of a request as the committer sees them: site_id, timestamp, id, attributes.
_SITE, _TIMESTAMP, _ID = 0, 1, 2


class RecordInput:
    """The production records of a PUT of one equipment type, v1 JSON or typed, as insert columns:
    timestamp, id, then the attributes in catalog order."""

    def __init__(self, equipment: RecordType) -> None:
        self.equipment = equipment
        keys: list[payload.Field] = [("timestamp", payload.Timestamp), ("id", payload.Uint32)]
        record = payload.record_struct(equipment.table_suffix, keys, equipment)
        self.fields: tuple[str, ...] = record.__struct_fields__
        self._decoder = payload.body_decoder(record, equipment.table_suffix)
        self._table = payload.RecordTable(record)

    def columns(self, body: payload.Body) -> Columns:
        table = self._table.decode(body) if len(body) >= payload.SLICED_BODY_BYTES else None
        if table is None:
            table = payload.records_table(payload.decode(self._decoder, body), len(self.fields))
        return [table[0].astype(np.int64), table[1].astype(np.uint32), *table[2:]]

    def batch_columns(self, batch: records_pb2.RecordBatch) -> Columns:
        typed.check_empty(batch)
        typed.no_fields(batch, ("creation_timestamps", "period_ends", "entry_columns"), "production records")
        rows = len(batch.timestamps)
        typed.check_length("ids", len(batch.ids), rows)
        stamps = typed.timestamps(batch.timestamps, _record_path)
        values = typed.attributes(batch.columns, self.equipment.attributes, rows, _record_path)
        return [stamps, np.array(batch.ids, dtype=np.uint32), *(v.for_native() for v in values)]


@dataclass(frozen=True, slots=True)
class _Body:
    """A PutProductionStream's body, gathered: what _put reads of a PutProductionRequest."""

    site_id: int
    equipment_type: int
    v1_json: bytearray


def _size_to_decode(request: ingest_pb2.PutProductionRequest | _Body) -> int:
    """The JSON body's length, or a typed batch's values' (8 bytes each). Not ByteSize(), which
    upb computes by serializing the message again: about 1 ms for a 1 MB body."""
    if isinstance(request, _Body) or not request.HasField("batch"):
        return len(request.v1_json)
    return len(request.batch.timestamps) * 8 * (2 + len(request.batch.columns))


def _record_path(row: int) -> str:
    return f"values[{row}]"


class _EquipmentWriter:
    """Input, insert layout and group commit of one equipment type."""

    def __init__(self, store: Store, table: Table, equipment: RecordType, batching: BatchSettings, retention: Retention) -> None:
        self.equipment = equipment
        self._retention = retention
        self.input = RecordInput(equipment)
        types = {column.name: column.type for column in table.columns}
        self._column_types = ["UInt32", *(types[field] for field in self.input.fields)]
        self._column_names = ["site_id", *self.input.fields]
        self._store = store
        self._table = store.table(table.name)
        self._rollup = store.table(ROLLUP_TABLES[equipment.name].name)
        self._pending = store.table(PENDING_TABLE.name)
        self.rollups = False  # STORECAST_ROLLUPS: inserts mark the spans they change pending
        # The marks as this process holds them (services/lib/reads/pending.py), on the embedded store.
        self.marks: PendingSpans | None = None
        self.maintainer: Maintainer | None = None  # notified after each insert that marked spans
        self._insert_settings = batching.insert_settings() or _UNIQUE_KEYS_SETTINGS
        self.committer = Committer(table.name, self.insert, (_SITE, _ID, _TIMESTAMP), batching)
        self.written = RECORDS_WRITTEN.labels("production", equipment.name)
        self._spans_marked = ROLLUP_SPANS_MARKED.labels(table.name)

    def insert(self, columns: Columns) -> None:
        """The block, then the spans whose rollup cells it changes, marked pending, before
        any of its PUTs is acknowledged. The records first: a maintainer round that read a
        mark must find its records stored (a mark written first could be done and deleted
        while its records were still on their way). In this process's own marks
        (services/lib/reads/pending.py) they are pending before the records are stored."""
        data = native.block(list(zip(self._column_names, self._column_types, columns)))
        horizon = self._retention.horizon_ms("production", self.equipment.name)
        marks = self.marks
        spans = kept_spans(touched_spans(columns[_SITE], columns[_ID], columns[_TIMESTAMP]), horizon) if self.rollups else []
        token = new_token()
        if marks is not None and spans:
            marks.add(self._table, token, spans)  # pending here before its records are stored
        try:
            with store_insert(), self._store.client() as client:
                client.raw_insert(self._table, self._column_names, data, fmt="Native", settings=self._insert_settings)
                if marks is not None and spans:
                    marks.stored(self._table, spans)
                if spans:
                    client.command(pending_sql(self._pending, self._table, spans, token))
                    self._spans_marked.inc(len(spans))
        except BaseException:
            if marks is not None:
                marks.discard([token])  # its PUTs fail, or the flusher retries them under a new token
            raise
        if spans and self.maintainer is not None:
            self.maintainer.notify()


def _writers(store: Store, batching: BatchSettings, retention: Retention) -> dict[int, _EquipmentWriter]:
    return {
        enum_value: _EquipmentWriter(store, PRODUCTION_TABLES[equipment.name], equipment, batching, retention)
        for enum_value, equipment in EQUIPMENT_BY_ENUM.items()
    }


class IngestService(ingest_pb2_grpc.IngestServicer):
    def __init__(
        self,
        store: Store,
        batching: BatchSettings,
        retention: Retention,
        *,
        rollups: bool = True,
        log_settings: LogSettings | None = None,
        max_body_bytes: int | None = None,
    ) -> None:
        self._store = store
        self._retention = retention
        # A streamed body's limit (PutProductionStream); a message's is the server's message size limit.
        self._max_body_bytes = int(setting("STORECAST_MAX_BODY_BYTES")) if max_body_bytes is None else max_body_bytes
        self._writers = _writers(store, batching, retention)
        # Every insert marks what it changes in the store. On the embedded store, which no other process can
        # open, this process writes and deletes every mark: it holds them here too, for its readers.
        self.pending_spans = PendingSpans() if rollups and store.embedded else None
        for writer in self._writers.values():
            writer.rollups = rollups
            writer.marks = self.pending_spans
        if not rollups:
            mark_rollups_stale(store, store.table(PENDING_TABLE.name))
        # None: PUTs wait for their insert (group commit), as forecasts and tariffs do.
        self.flusher = None if log_settings is None else self._start_log(log_settings)
        if not rollups:
            return
        tables = {
            store.table(PRODUCTION_TABLES[w.equipment.name].name): RollupOf(
                store.table(ROLLUP_TABLES[w.equipment.name].name), w.equipment
            )
            for w in self._writers.values()
        }
        maintainer = Maintainer(store, store.table(PENDING_TABLE.name), tables, retention, marks=self.pending_spans)
        for writer in self._writers.values():
            writer.maintainer = maintainer
        maintainer.notify()  # spans a previous process left pending

    def _start_log(self, settings: LogSettings) -> Flusher:
        """The log replayed (before this service serves), then flushed in the background. Its last
        flush at a stop runs before the rollup maintainer's last round (registered after it)."""
        wal = WriteAheadLog(settings.directory, settings.max_bytes, sync=settings.sync)
        hot = HotTier(list(EQUIPMENT_TYPES.values()), settings.hot_window_s, settings.hot_max_bytes)
        inserts = {writer.equipment.name: writer.insert for writer in self._writers.values()}
        flusher = Flusher(wal, inserts, self._newest_stored, hot, settings.flush)
        replayed = flusher.replay()
        if replayed:
            log.info("write-ahead log: %d acknowledged records replayed from %s", replayed, settings.directory)
        flusher.start()
        self._store.before_close(flusher.stop)
        return flusher

    def _newest_stored(self, equipment: str, keys: list[SeriesKey]) -> dict[SeriesKey, int | None]:
        with store_query(), self._store.client() as client:
            return newest_timestamps(client, self._store.table(PRODUCTION_TABLES[equipment].name), keys)

    async def PutProduction(self, request: ingest_pb2.PutProductionRequest, context: Context) -> records_pb2.PutReply:
        return await self._put(request)

    async def PutProductionStream(
        self, pieces: AsyncIterator[ingest_pb2.PutProductionPiece], context: Context
    ) -> records_pb2.PutReply:
        body = bytearray()
        named: tuple[int, int] | None = None  # the first piece's site and equipment type
        async for piece in pieces:
            if named is None:
                named = (piece.site_id, piece.equipment_type)
            body += piece.v1_json
            if len(body) > self._max_body_bytes:
                raise ApiFailure(ApiStatus.PAYLOAD_CONTENT_ERROR, f"the body is larger than {self._max_body_bytes} bytes")
        if named is None:
            raise ApiFailure(ApiStatus.PAYLOAD_EMPTY_ERROR, "the body is empty")
        return await self._put(_Body(*named, body))

    async def PutProductionMany(
        self, request: ingest_pb2.PutProductionManyRequest, context: Context
    ) -> ingest_pb2.PutProductionManyReply:
        # One per PUT, whatever the caller sent: its own, or "-".
        request_ids = [*request.request_ids[: len(request.puts)], *["-"] * (len(request.puts) - len(request.request_ids))]
        if len(request.puts) == 1:  # the gateway's lone PUT: no task to gather
            return ingest_pb2.PutProductionManyReply(outcomes=[await self._outcome(request.puts[0], request_ids[0])])
        outcomes = await asyncio.gather(*(self._outcome(put, request_id) for put, request_id in zip(request.puts, request_ids)))
        return ingest_pb2.PutProductionManyReply(outcomes=outcomes)

    async def _outcome(self, request: ingest_pb2.PutProductionRequest, request_id: str) -> ingest_pb2.PutOutcome:
        """One PUT of several, answered as PutProduction's interceptor would answer it alone."""
        try:
            return ingest_pb2.PutOutcome(stored=await self._put(request))
        except ApiFailure as failure:
            return ingest_pb2.PutOutcome(error=to_api_error(failure))
        except Exception:
            log.exception("request_id=%s method=PutProductionMany failed", request_id)
            return ingest_pb2.PutOutcome(error=to_api_error(ApiFailure(ApiStatus.SERVER_ERROR)))

    async def _put(self, request: ingest_pb2.PutProductionRequest | _Body) -> records_pb2.PutReply:
        """On the event loop: a small body is decoded there, a large one on a thread (the loop serves
        other calls meanwhile); then the log's group commit, or without a log the store's."""
        writer = self._writers.get(request.equipment_type)
        if writer is None:
            raise ApiFailure(ApiStatus.INVALID_TYPE, f"unknown equipment type {request.equipment_type}")
        if self.flusher is None:
            return await asyncio.to_thread(self._commit, writer, request)
        if _size_to_decode(request) <= _DECODED_ON_THE_LOOP_BYTES:
            records = self._records(writer, request)
        else:
            records = await asyncio.to_thread(self._records, writer, request)
        await self._log(records)
        rows = len(records.timestamps)
        writer.written.inc(rows)
        return records_pb2.PutReply(stored=rows)

    def _records(self, writer: _EquipmentWriter, request: ingest_pb2.PutProductionRequest | _Body) -> Records:
        return Records.of(writer.equipment.name, request.site_id, self._columns(writer, request))

    def _columns(self, writer: _EquipmentWriter, request: ingest_pb2.PutProductionRequest | _Body) -> Columns:
        """The request's records as insert columns, the last occurrence of a key kept, charged to the budget."""
        if isinstance(request, _Body):
            columns = writer.input.columns(request.v1_json)
            # The largest thing a PUT holds, freed once decoded rather than once logged and answered,
            # and given back to the system (docs/operations/admission.md).
            request.v1_json.clear()
            return_freed_memory()
        elif request.HasField("batch"):
            columns = writer.input.batch_columns(request.batch)
        else:
            columns = writer.input.columns(request.v1_json)
        timestamps, ids = columns[0], columns[1]
        kept = last_occurrences(ids, timestamps)
        if kept is not None:
            columns = take(columns, kept)
        charge_records(len(columns[0]))
        return columns

    def _commit(self, writer: _EquipmentWriter, request: ingest_pb2.PutProductionRequest | _Body) -> records_pb2.PutReply:
        columns = self._columns(writer, request)
        rows = len(columns[0])
        writer.committer.store([(request.site_id,) * rows, *columns])
        writer.written.inc(rows)
        return records_pb2.PutReply(stored=rows)

    def ReadRecent(self, request: ingest_pb2.ReadRecentRequest, context: grpc.ServicerContext) -> ingest_pb2.ReadRecentReply:
        read = request.read
        equipment = EQUIPMENT_BY_ENUM.get(read.equipment_type)
        if self.flusher is not None and request.everything:
            self.flusher.sync_all()
        if self.flusher is None or equipment is None:
            return ingest_pb2.ReadRecentReply(answered=False)
        window = production_window(read)
        if request.answer:
            horizon = self._retention.horizon_ms("production", equipment.name)
            limit = read.max_records or 1
            answer = from_memory(self.flusher, equipment, read.site_id, read.id, window, horizon, limit)
            if answer is not None:
                return ingest_pb2.ReadRecentReply(answered=True, records=answer)
        self.flusher.sync(equipment.name, read.site_id, read.id, window.start, window.end)
        return ingest_pb2.ReadRecentReply(answered=False)

    async def _log(self, records: Records) -> None:
        assert self.flusher is not None
        try:
            await self.flusher.write(records)
        except LogFull as full:
            raise ApiFailure(
                ApiStatus.SERVER_ERROR, f"{full}; retry later", grpc_code=grpc.StatusCode.UNAVAILABLE, retry_after_s=1
            ) from None


def register(service: IngestService) -> Registration:
    def add(server: grpc.aio.Server) -> str:
        ingest_pb2_grpc.add_IngestServicer_to_server(service, server)
        return ingest_pb2.DESCRIPTOR.services_by_name["Ingest"].full_name

    return add
