"""Production records from the write-ahead log into the store, in large blocks, off the request path.

A PUT is acknowledged once its entry is synced in the log (services/ingest/wal.py);
its records then wait here, per equipment table, in log order. Every
`interval_s`, or sooner once `max_rows` wait or a read needs them stored, the
flusher seals the log's segment and takes what waits (one atomic step, so the
sealed segments hold exactly what was taken), inserts each table's records as
one block (the last of each key winning, in log order, as one request's do),
with the rollup marks and retention of any insert, and only then deletes the
sealed segments. A failed insert keeps its records, ahead of newer ones, for
the next round, and its segments on disk.

Before its first insert of a series the flusher asks the store for the series'
newest stored timestamp: what the hot tier needs to prove that it holds every
record of the series from some timestamp on (services/lib/recent/hot.py).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field

import msgspec
import numpy as np

from services.ingest.wal import WriteAheadLog
from services.lib.background import lower_priority
from services.lib.config import FlushSettings
from services.lib.recent.hot import HotTier, SeriesKey, SeriesRecords
from services.lib.records.columns import Columns, concat, last_occurrences, take
from services.lib.rpc.metrics import HOT_TIER_BYTES, WAL_BYTES, WAL_FLUSHES, WAL_UNFLUSHED_ROWS
from storecast.status import ApiFailure, ApiStatus

log = logging.getLogger("storecast.flusher")
_LOG_BYTES = WAL_BYTES.labels("production")
_UNFLUSHED = WAL_UNFLUSHED_ROWS.labels("production")
_STORED = WAL_FLUSHES.labels("production", "stored")
_FAILED = WAL_FLUSHES.labels("production", "failed")
_HOT_BYTES = HOT_TIER_BYTES.labels("production")

# Stores one table's block [site_id, timestamp, id, attributes...]; raises if the store refused it.
InsertBlock = Callable[[Columns], None]
# The newest stored timestamp of each of a table's series (None: nothing stored).
NewestStored = Callable[[str, list[SeriesKey]], dict[SeriesKey, int | None]]


@dataclass(frozen=True, slots=True)
class Records:
    """One acknowledged request's records: its site, then columns with unique keys."""

    equipment: str
    site_id: int
    timestamps: np.ndarray  # int64
    ids: np.ndarray  # uint32
    attributes: list[np.ndarray]  # float64, NaN where null

    @classmethod
    def of(cls, equipment: str, site_id: int, columns: Columns) -> Records:
        """From a request's columns (timestamp, id, attributes; tuples or arrays, None or NaN where null)."""
        return cls(
            equipment,
            site_id,
            np.asarray(columns[0], dtype=np.int64),
            np.asarray(columns[1], dtype=np.uint32),
            [np.asarray(column, dtype=np.float64) for column in columns[2:]],
        )

    def encode(self) -> bytes:
        # msgpack's bin takes an array's bytes through its memoryview (`.data`), without a copy of its own.
        attributes = np.concatenate(self.attributes) if self.attributes else np.empty(0)
        return msgspec.msgpack.encode(
            (
                self.equipment,
                self.site_id,
                np.ascontiguousarray(self.timestamps).data,
                np.ascontiguousarray(self.ids).data,
                len(self.attributes),
                attributes.data,
            )
        )

    @classmethod
    def decode(cls, entry: bytes) -> Records:
        equipment, site_id, timestamps, ids, count, attributes = msgspec.msgpack.decode(entry)
        rows = len(timestamps) // 8
        flat = np.frombuffer(attributes, dtype=np.float64)
        return cls(
            equipment,
            site_id,
            np.frombuffer(timestamps, dtype=np.int64),
            np.frombuffer(ids, dtype=np.uint32),
            [flat[i * rows : (i + 1) * rows] for i in range(count)],
        )

    def insert_columns(self) -> Columns:
        return [np.full(len(self.timestamps), self.site_id, dtype=np.uint32), self.timestamps, self.ids, *self.attributes]


@dataclass(slots=True)
class _Waiting:
    """What waits for the next flush: per table, the requests' insert columns in log order."""

    blocks: dict[str, list[Columns]] = field(default_factory=dict)
    # Per table and series, the range of timestamps waiting: a read of them asks for a flush first.
    spans: dict[str, dict[SeriesKey, tuple[int, int]]] = field(default_factory=dict)
    rows: int = 0


class Flusher:
    def __init__(
        self,
        wal: WriteAheadLog,
        inserts: Mapping[str, InsertBlock],
        newest_stored: NewestStored,
        hot: HotTier,
        settings: FlushSettings,
    ) -> None:
        self._wal = wal
        self._inserts = inserts
        self._newest_stored = newest_stored
        self.hot = hot
        self._settings = settings
        self._waiting = _Waiting()
        self._generation = 1  # the flush that will store what waits now
        self._stored_generation = 0
        self._failed_generation = 0
        self._changed = threading.Condition()  # the generations; woken by writes over max_rows and by reads
        self._flush_lock = threading.Lock()  # one flush at a time
        self._wanted = False
        # What the flush under way took, and its generation: a read of it waits for that flush.
        self._in_flight: tuple[_Waiting, int] | None = None
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    # The request path

    async def write(self, records: Records) -> None:
        """Returns once `records` are durable in the log and waiting here; raises LogFull."""
        await self._wal.append(records.encode(), lambda: self._accept(records))

    def _accept(self, records: Records) -> None:
        """In the log writer's thread, in log order, under the lock `seal` takes."""
        waiting = self._waiting
        waiting.blocks.setdefault(records.equipment, []).append(records.insert_columns())
        spans = waiting.spans.setdefault(records.equipment, {})
        for key, low, high in _series_spans(records):
            known = spans.get(key)
            spans[key] = (low, high) if known is None else (min(known[0], low), max(known[1], high))
        waiting.rows += len(records.timestamps)
        _UNFLUSHED.set(waiting.rows)
        now_ms = time.time_ns() // 1_000_000
        self.hot.add(
            records.equipment, records.site_id, records.ids, records.timestamps, records.attributes, self._generation, now_ms
        )
        if waiting.rows >= self._settings.max_rows:
            with self._changed:
                self._wanted = True
                self._changed.notify_all()

    def replay(self) -> int:
        """Every entry left in the log by an earlier process, back in the buffer (and the hot tier); how many records."""
        count = 0
        for entry in self._wal.replay():
            records = Records.decode(entry)
            self._accept(records)
            count += len(records.timestamps)
        return count

    # The read path

    def read(self, equipment: str, site_id: int, record_id: int, start: int | None, end: int | None) -> SeriesRecords | None:
        return self.hot.read(equipment, site_id, record_id, start, end)

    def sync(self, equipment: str, site_id: int, record_id: int, start: int | None, end: int | None) -> None:
        """Returns once every acknowledged record of the series in [start, end[ is in the store."""

        def waits_in(waiting: _Waiting) -> bool:
            span = waiting.spans.get(equipment, {}).get((site_id, record_id))
            return span is not None and (start is None or span[1] >= start) and (end is None or span[0] < end)

        with self._changed:
            # What waits, or what a flush under way took and has not stored yet (both swapped under this lock).
            if waits_in(self._waiting):
                self._wait_for(self._generation, wanted=True)
            elif self._in_flight is not None and waits_in(self._in_flight[0]):
                self._wait_for(self._in_flight[1])

    def sync_all(self) -> None:
        """Returns once every acknowledged record is in the store."""
        with self._changed:
            if self._waiting.rows:
                self._wait_for(self._generation, wanted=True)
            elif self._in_flight is not None:
                self._wait_for(self._in_flight[1])

    def _wait_for(self, target: int, *, wanted: bool = False) -> None:
        """With `_changed` held: until flush `target` is done (asking for it at once if `wanted`); 1500 if it failed."""
        if wanted:
            self._wanted = True
            self._changed.notify_all()
        while self._stored_generation < target and self._failed_generation < target:
            self._changed.wait()
        if self._stored_generation < target:
            raise ApiFailure(ApiStatus.SERVER_ERROR, "the store is unavailable")

    # The flusher's thread

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="wal-flusher", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """One last flush of what the log acknowledged (what fails stays in the log for the next start)."""
        self._stopping.set()
        with self._changed:
            self._changed.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=60)

    def _run(self) -> None:
        lower_priority()
        while True:
            with self._changed:
                if not self._wanted and not self._stopping.is_set():
                    self._changed.wait(self._settings.interval_s)
                self._wanted = False
                # Seen before the flush, so the last flush starts after the stop: a PUT acknowledged
                # while the previous flush ran is stored too, not left to the next start's replay.
                last = self._stopping.is_set()
            self.flush()
            self.hot.evict()
            _LOG_BYTES.set(self._wal.size_bytes)
            _UNFLUSHED.set(self._waiting.rows)
            _HOT_BYTES.set(self.hot.nbytes)
            if last:
                return

    def flush(self) -> bool:
        """Store what waits; whether all of it was stored."""
        with self._flush_lock:
            sealed, (taken, generation) = self._wal.seal(self._take)
            failed: dict[str, list[Columns]] = {}
            for equipment, blocks in taken.blocks.items():
                try:
                    self._store(equipment, blocks, list(taken.spans[equipment]))
                except Exception:
                    log.exception("flushing %s records failed; they stay in the write-ahead log and are retried", equipment)
                    failed[equipment] = blocks
            if failed:
                self._restore(failed, taken)
            else:
                self._wal.release(sealed)
            (_FAILED if failed else _STORED).inc()
            with self._changed:
                if failed:
                    self._failed_generation = generation
                else:
                    self._stored_generation = generation
                    self.hot.stored_generation = generation
                self._in_flight = None
                self._changed.notify_all()
            return not failed

    def _take(self) -> tuple[_Waiting, int]:
        """Under the log's lock: what waits, and its generation; a new generation starts."""
        with self._changed:
            taken, self._waiting = self._waiting, _Waiting()
            generation = self._generation
            self._generation += 1
            self._in_flight = (taken, generation)
        return taken, generation

    def _restore(self, failed: dict[str, list[Columns]], taken: _Waiting) -> None:
        """Failed blocks go back ahead of what arrived meanwhile: the log order holds."""

        def put_back() -> None:
            for equipment, blocks in failed.items():
                self._waiting.blocks[equipment] = blocks + self._waiting.blocks.get(equipment, [])
                spans = self._waiting.spans.setdefault(equipment, {})
                for key, (low, high) in taken.spans[equipment].items():
                    known = spans.get(key)
                    spans[key] = (low, high) if known is None else (min(known[0], low), max(known[1], high))
                self._waiting.rows += sum(len(block[0]) for block in blocks)

        self._wal.seal(put_back)

    def _store(self, equipment: str, blocks: list[Columns], series: list[SeriesKey]) -> None:
        unknown = self.hot.unestablished(equipment, series)
        if unknown:
            self.hot.establish(equipment, self._newest_stored(equipment, unknown))
        merged: Columns = blocks[0] if len(blocks) == 1 else [concat([b[i] for b in blocks]) for i in range(len(blocks[0]))]
        kept = None if len(blocks) == 1 else last_occurrences(merged[0], merged[2], merged[1])  # site, id, timestamp
        self._inserts[equipment](merged if kept is None else take(merged, kept))


def _series_spans(records: Records) -> Iterator[tuple[SeriesKey, int, int]]:
    """Each series of a request with its lowest and highest timestamp."""
    if len(records.ids) and (records.ids == records.ids[0]).all():
        yield (records.site_id, int(records.ids[0])), int(records.timestamps.min()), int(records.timestamps.max())
        return
    for record_id in np.unique(records.ids).tolist():
        stamps = records.timestamps[records.ids == record_id]
        yield (records.site_id, record_id), int(stamps.min()), int(stamps.max())
