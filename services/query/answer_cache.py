"""The answers of settled production reads, kept until a write changes their range.

A dashboard that several people watch, or a job that pulls the same day again,
asks the same read many times while nothing in its range changes; each time
the engine pays its fixed cost per query (NOTES: 5-12 ms here) and its work.
So the query service keeps each JSON answer it got from the store, keyed by
the request itself, within `max_bytes` (least recently used first out), as
VictoriaMetrics' rollup result cache and Mimir's results cache do. Unlike
theirs, nothing here is a guess about late writes: this process is told of
every insert of the store (`changing`, services/lib/reads/pending.py, on the
embedded store, which only this process opens), and

- an insert's spans drop every answer of their series whose range they overlap,
  as they are marked (before the records are stored) and again once stored;
- an answer is kept only if no insert touched its range between the start of
  its read and its end (`_Fill.spoiled`), so one read racing an insert never
  keeps what the insert's records would have changed;
- the records older than the raw retention's horizon change without an insert
  (TTL, and reads leave them out): an answer is kept only for a range that
  starts at or after the horizon's next minute (inserts mark nothing before it:
  rollup.kept_spans), and dropped once the horizon reaches it.

The read calls `answer` once every acknowledged record of its range is in the
store (RecentReads.sync): a record in the write-ahead log is not in any span yet.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from prometheus_client import Counter, Gauge

from services.lib.reads.rollup import MINUTE, Span
from storecast.v1 import records_pb2

_READS = Counter(
    "storecast_answer_cache_reads",
    "Settled production reads by where they were answered: the answers kept in memory (hit), or the store (miss).",
    ["outcome"],
)
_HITS = _READS.labels("hit")
_MISSES = _READS.labels("miss")
_BYTES = Gauge("storecast_answer_cache_bytes", "Bytes of the production answers kept in memory.")
# What an entry holds beyond its JSON: the message, the key, the index's sets (measured: about 600 bytes).
_ENTRY_OVERHEAD = 1024
# An answer larger than this part of the budget is not kept: it would push out many others.
_LARGEST_PART = 4

# (raw table, site_id, id)
_Series = tuple[str, int, int]


@dataclass(slots=True)
class _Entry:
    series: _Series
    start: int
    end: int
    answer: records_pb2.Records
    nbytes: int


@dataclass(eq=False, slots=True)
class _Fill:
    """A read under way whose answer may be kept."""

    series: _Series
    start: int
    end: int
    spoiled: bool = False


def _overlaps(span: Span, start: int, end: int) -> bool:
    return span.last >= start and span.first < end


def first_kept_start(horizon: int) -> int:
    """The earliest start of a range whose answer may be kept: the minute after the horizon."""
    return -(-horizon // MINUTE) * MINUTE


class AnswerCache:
    """Thread-safe: reads answer on the services' worker threads, inserts tell of changes on theirs."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._entries: OrderedDict[bytes, _Entry] = OrderedDict()
        self._keys_of: dict[_Series, set[bytes]] = {}
        self._fills: set[_Fill] = set()
        self.nbytes = 0

    def answer(
        self, key: bytes, series: _Series, start: int, end: int, horizon: int, read: Callable[[], records_pb2.Records]
    ) -> records_pb2.Records:
        """The answer kept under `key` for the series' [start, end[, or `read`'s, kept if it may be."""
        if start < first_kept_start(horizon):
            with self._lock:
                if key in self._entries:  # kept while the horizon was before it
                    self._drop(key)
                    _BYTES.set(self.nbytes)
            return read()
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                self._entries.move_to_end(key)
                _HITS.inc()
                return entry.answer
            fill = _Fill(series, start, end)
            self._fills.add(fill)
        _MISSES.inc()
        try:
            answer = read()
        finally:
            with self._lock:
                self._fills.discard(fill)
        self._keep(key, fill, answer)
        return answer

    def _keep(self, key: bytes, fill: _Fill, answer: records_pb2.Records) -> None:
        nbytes = len(answer.results_json) + len(key) + _ENTRY_OVERHEAD
        if nbytes > self.max_bytes // _LARGEST_PART:
            return
        with self._lock:
            if fill.spoiled or key in self._entries:
                return
            self._entries[key] = _Entry(fill.series, fill.start, fill.end, answer, nbytes)
            self._keys_of.setdefault(fill.series, set()).add(key)
            self.nbytes += nbytes
            while self.nbytes > self.max_bytes:
                self._drop(next(iter(self._entries)))
            _BYTES.set(self.nbytes)

    def _drop(self, key: bytes) -> None:
        entry = self._entries.pop(key)
        self.nbytes -= entry.nbytes
        keys = self._keys_of[entry.series]
        keys.discard(key)
        if not keys:
            del self._keys_of[entry.series]

    def changing(self, table: str, spans: Sequence[Span]) -> None:
        """PendingSpans' watcher: the spans' records are being stored, or just were."""
        with self._lock:
            for span in spans:
                series = (table, span.site_id, span.id)
                for fill in self._fills:
                    if fill.series == series and _overlaps(span, fill.start, fill.end):
                        fill.spoiled = True
                for key in list(self._keys_of.get(series, ())):
                    entry = self._entries[key]
                    if _overlaps(span, entry.start, entry.end):
                        self._drop(key)
            _BYTES.set(self.nbytes)

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)
