"""The hot tier: each series' recently acknowledged production records, in memory.

Dashboards and controllers poll the last minutes of an equipment; the engine's
fixed cost per query (about 7 ms here) is most of such a read. So the ingest
process keeps, per series (equipment type, site, id), the records it
acknowledged within the last `window_s` seconds, within `max_bytes`, and a read
is answered from them when they provably hold every record of the series in
its range.

"Provably" is the series' `covered_from`: every record of the series whose
timestamp is at or past it is in memory. It is the larger of
- `stored_after + 1`, where `stored_after` is the newest timestamp the store held
  for the series before this process stored any record of it (asked once per
  series, by the flusher, before its first insert of the series; None until then,
  and nothing is answered from memory meanwhile), and
- one past the newest timestamp this tier ever let go of: records evicted (past
  the window or the memory budget, only once stored) or never kept (timestamps
  older than the window: history being loaded, which no recent read asks for).
This holds while one ingest process writes each series: `serve all`, or replicas
that each own their sites (docs/architecture/recent-writes.md).

Layout: a series holds a list of chunks in order of acknowledgement, each two
arrays (its timestamps, and its attributes as one attributes x rows float64
array) with the time of its newest acknowledgement and the flush that stores
it. Small requests append to the series' last chunk (its arrays grow by
doubling up to `_CHUNK_ROWS`; a full chunk is never copied again); a request
of `_CHUNK_ROWS` rows or more is a chunk of its own. A new record of a key the
series already holds drops the older version from its chunk, so repeated
replacements do not pile up; reads still let the last acknowledged version win.
Eviction lets go of whole chunks, oldest first, and then of the series left
empty once all their records are stored (a series written again starts afresh).

`nbytes`, what `max_bytes` bounds, is the arrays' bytes plus a fixed overhead
per chunk and per series (array headers, objects, the allocator's headers, as
measured by tests/bench/hot_memory.py), so that it bounds what the process
really holds for the tier, not only the values.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from storecast.catalog import RecordType

# Series key: (site_id, id).
SeriesKey = tuple[int, int]
# A full chunk's rows: its fixed overhead (about 500 bytes) is then under 4% of 13 attributes' data.
_CHUNK_ROWS = 128
# A chunk takes records acknowledged within this part of the window only: its window eviction is late by that at
# most (a series PUT once a second fills 112 rows of a chunk in an hour's window).
_CHUNKS_PER_WINDOW = 32
# A new last chunk's first capacity: a series that gets few records holds little.
_FIRST_ROWS = 4
# What the process holds per chunk beyond its arrays' data, and per series beyond its chunks (see the module's docstring).
_CHUNK_OVERHEAD = 512
_SERIES_OVERHEAD = 512


@dataclass(slots=True)
class _Chunk:
    """Records of one series from one or more acknowledged requests, in order of acknowledgement; keys unique within it."""

    timestamps: np.ndarray  # int64; its capacity, the first `rows` in use
    values: np.ndarray  # float64, attributes x capacity, NaN where null
    rows: int
    low: int  # the oldest and newest timestamps in it
    high: int
    opened_at: float  # monotonic time of the oldest acknowledgement in it
    acked_at: float  # monotonic time of the newest acknowledgement in it
    generation: int  # the flush that stores all of it (stored once the flusher's stored generation reaches it)

    @property
    def nbytes(self) -> int:
        return self.timestamps.nbytes + self.values.nbytes + _CHUNK_OVERHEAD


def _resized(chunk: _Chunk, capacity: int) -> _Chunk:
    """The chunk in new arrays of `capacity` rows (at least its rows), its rows copied."""
    timestamps = np.empty(capacity, dtype=np.int64)
    values = np.empty((len(chunk.values), capacity))
    timestamps[: chunk.rows] = chunk.timestamps[: chunk.rows]
    values[:, : chunk.rows] = chunk.values[:, : chunk.rows]
    return _Chunk(timestamps, values, chunk.rows, chunk.low, chunk.high, chunk.opened_at, chunk.acked_at, chunk.generation)


@dataclass(slots=True)
class _Series:
    chunks: list[_Chunk] = field(default_factory=list)
    stored_after: int | None = None  # see the module's docstring
    established: bool = False
    let_go_through: int = -1  # the newest timestamp not in memory for a reason of this tier's own
    high: int = -1  # no timestamp held is newer: a request of newer ones only replaces nothing
    joined: tuple[np.ndarray, np.ndarray] | None = None  # the chunks joined, until they change
    generation: int = 0  # the newest flush with records of this series, kept here or not

    def covered_from(self) -> int | None:
        if not self.established:
            return None
        stored = -1 if self.stored_after is None else self.stored_after
        return max(stored, self.let_go_through) + 1


@dataclass(frozen=True, slots=True)
class SeriesRecords:
    """A series' records in a range, ascending by timestamp, newest version of each."""

    timestamps: np.ndarray
    attributes: list[np.ndarray]


def _nbytes(joined: tuple[np.ndarray, np.ndarray]) -> int:
    return joined[0].nbytes + joined[1].nbytes + _CHUNK_OVERHEAD


def _joined(chunks: Sequence[_Chunk]) -> tuple[np.ndarray, np.ndarray]:
    """The chunks' rows ascending by timestamp (attributes x rows), the last acknowledged row of each timestamp."""
    timestamps = np.concatenate([chunk.timestamps[: chunk.rows] for chunk in chunks])
    values = np.concatenate([chunk.values[:, : chunk.rows] for chunk in chunks], axis=1)
    if (timestamps[1:] > timestamps[:-1]).all():  # the usual series: written in order
        return timestamps, values
    reversed_order = timestamps[::-1]
    unique, first_in_reversed = np.unique(reversed_order, return_index=True)
    rows = len(timestamps) - 1 - first_in_reversed
    return unique, values[:, rows]


def _rows_by_id(ids: np.ndarray) -> list[tuple[int, np.ndarray | None]]:
    """Each id of a request with its rows (None: all of them), in request order within the id."""
    if not len(ids):
        return []
    first = int(ids[0])
    if len(ids) == 1 or (ids == first).all():  # the usual request: one equipment, often one record
        return [(first, None)]
    order = np.argsort(ids, kind="stable")
    sorted_ids = ids[order]
    starts = np.flatnonzero(np.concatenate(([True], sorted_ids[1:] != sorted_ids[:-1])))
    ends = np.append(starts[1:], len(order))
    return [(int(sorted_ids[start]), order[start:end]) for start, end in zip(starts.tolist(), ends.tolist())]


class RecentWrites(Protocol):
    """What a reader in the ingest's process asks of its recent writes (the flusher answers)."""

    def read(self, equipment: str, site_id: int, record_id: int, start: int | None, end: int | None) -> SeriesRecords | None:
        """The series' records in [start, end[ if memory provably holds all of them."""

    def sync(self, equipment: str, site_id: int, record_id: int, start: int | None, end: int | None) -> None:
        """Returns once every acknowledged record of the series in [start, end[ is in the store."""

    def sync_all(self) -> None:
        """Returns once every acknowledged record is in the store."""


class HotTier:
    """Recent records per series of every equipment type, kept by one ingest process."""

    def __init__(self, equipment: Sequence[RecordType], window_s: float, max_bytes: int) -> None:
        self.window_s = window_s
        self.max_bytes = max_bytes
        self._series: dict[str, dict[SeriesKey, _Series]] = {e.name: {} for e in equipment}
        self._lock = threading.Lock()
        self.nbytes = 0
        self.stored_generation = 0  # every chunk of a generation up to this one is in the store

    @property
    def enabled(self) -> bool:
        return self.window_s > 0 and self.max_bytes > 0

    def add(
        self,
        equipment: str,
        site_id: int,
        ids: np.ndarray,
        timestamps: np.ndarray,
        attributes: list[np.ndarray],
        generation: int,
        now_ms: int,
    ) -> None:
        """An acknowledged request's records (keys unique), before its 201."""
        if not self.enabled:
            return
        acked_at = time.monotonic()
        oldest_kept = now_ms - int(self.window_s * 1000)
        series_of_type = self._series[equipment]
        with self._lock:
            for record_id, rows in _rows_by_id(ids):
                key = (site_id, record_id)
                series = series_of_type.get(key)
                if series is None:
                    series = series_of_type[key] = _Series()
                    self.nbytes += _SERIES_OVERHEAD
                series.generation = generation
                stamps = timestamps if rows is None else timestamps[rows]
                columns = attributes if rows is None else [column[rows] for column in attributes]
                low, high = (int(stamps[0]),) * 2 if len(stamps) == 1 else (int(stamps.min()), int(stamps.max()))
                if low < oldest_kept:
                    recent = stamps >= oldest_kept
                    series.let_go_through = max(series.let_go_through, int(stamps[~recent].max()))
                    stamps, columns = stamps[recent], [column[recent] for column in columns]
                    if not len(stamps):
                        continue
                    low = int(stamps.min())
                values = np.concatenate(columns).reshape(len(columns), len(stamps))
                self._unjoin(series)
                if low <= series.high:
                    self._drop_replaced(series, stamps, low, high)
                series.high = max(series.high, high)
                self._append(series, stamps, values, low, high, acked_at, generation)

    def _append(
        self, series: _Series, stamps: np.ndarray, values: np.ndarray, low: int, high: int, acked_at: float, generation: int
    ) -> None:
        """Into the series' last chunk while it is not full nor too old, the rest into chunks of their own."""
        chunks = series.chunks
        taken = 0
        last = chunks[-1] if chunks else None
        if last is not None and acked_at - last.opened_at > self.window_s / _CHUNKS_PER_WINDOW:
            if last.rows < len(last.timestamps):  # it takes no more: no room left unused for the rest of its life
                exact = _resized(last, last.rows)
                self.nbytes += exact.nbytes - last.nbytes
                chunks[-1] = exact
            last = None
        if last is not None and last.rows < _CHUNK_ROWS:
            taken = min(len(stamps), _CHUNK_ROWS - last.rows)
            end = last.rows + taken
            if end > len(last.timestamps):  # grow it: at most _CHUNK_ROWS rows are ever copied
                capacity = min(_CHUNK_ROWS, max(_FIRST_ROWS, 2 * len(last.timestamps), end))
                grown = _resized(last, capacity)
                self.nbytes += grown.nbytes - last.nbytes
                chunks[-1] = last = grown
            last.acked_at = acked_at
            last.generation = max(last.generation, generation)
            if taken == len(stamps):  # the usual request
                last.timestamps[last.rows : end] = stamps
                last.values[:, last.rows : end] = values
                last.rows = end
                last.low, last.high = min(last.low, low), max(last.high, high)
                return
            last.timestamps[last.rows : end] = stamps[:taken]
            last.values[:, last.rows : end] = values[:, :taken]
            last.rows = end
            last.low, last.high = min(last.low, int(stamps[:taken].min())), max(last.high, int(stamps[:taken].max()))
            stamps, values = stamps[taken:], values[:, taken:]
            low, high = int(stamps.min()), int(stamps.max())
        if len(stamps) >= _CHUNK_ROWS:  # a chunk of its own, exactly its size
            own = values if taken == 0 else values.copy()
            chunk = _Chunk(stamps.copy(), own, len(stamps), low, high, acked_at, acked_at, generation)
        else:  # a new last chunk, room to grow
            capacity = max(_FIRST_ROWS, len(stamps))
            chunk = _Chunk(
                np.empty(capacity, dtype=np.int64),
                np.empty((len(values), capacity)),
                len(stamps),
                low,
                high,
                acked_at,
                acked_at,
                generation,
            )
            chunk.timestamps[: len(stamps)] = stamps
            chunk.values[:, : len(stamps)] = values
        chunks.append(chunk)
        self.nbytes += chunk.nbytes

    def _drop_replaced(self, series: _Series, stamps: np.ndarray, low: int, high: int) -> None:
        """The older versions of these keys out of the series' chunks (the new ones follow them)."""
        kept_chunks = []
        for chunk in series.chunks:
            if chunk.high < low or chunk.low > high:
                kept_chunks.append(chunk)
                continue
            kept = ~np.isin(chunk.timestamps[: chunk.rows], stamps)
            if kept.all():
                kept_chunks.append(chunk)
                continue
            self.nbytes -= chunk.nbytes
            if not kept.any():
                continue
            # Exactly the rows left (a copy): a chunk that mostly held replaced keys holds no more than they left.
            left = chunk.timestamps[: chunk.rows][kept]
            values = chunk.values[:, : chunk.rows][:, kept]
            shrunk = _Chunk(
                left, values, len(left), int(left.min()), int(left.max()), chunk.opened_at, chunk.acked_at, chunk.generation
            )
            self.nbytes += shrunk.nbytes
            kept_chunks.append(shrunk)
        series.chunks = kept_chunks

    def unestablished(self, equipment: str, keys: Sequence[SeriesKey]) -> list[SeriesKey]:
        """Of these series, those whose stored timestamps must still be asked for."""
        series_of_type = self._series[equipment]
        with self._lock:
            return [key for key in keys if key in series_of_type and not series_of_type[key].established]

    def establish(self, equipment: str, stored_after: dict[SeriesKey, int | None]) -> None:
        """The newest stored timestamp of each series, asked before this process stored any record of it."""
        series_of_type = self._series[equipment]
        with self._lock:
            for key, newest in stored_after.items():
                series = series_of_type.get(key)
                if series is not None and not series.established:
                    series.stored_after = newest
                    series.established = True

    def read(self, equipment: str, site_id: int, record_id: int, start: int | None, end: int | None) -> SeriesRecords | None:
        """The series' records in [start, end[ (None: unbounded), if memory provably holds all of them."""
        with self._lock:
            series = self._series[equipment].get((site_id, record_id))
            if series is None:
                return None
            covered_from = series.covered_from()
            if covered_from is None or (start if start is not None else 0) < covered_from or not series.chunks:
                return None
            if series.joined is None:
                # A polled series is joined once per change, not once per read (its bytes count too).
                series.joined = _joined(series.chunks)
                self.nbytes += _nbytes(series.joined)
            stamps, values = series.joined
        lower = 0 if start is None else int(np.searchsorted(stamps, start, side="left"))
        upper = len(stamps) if end is None else int(np.searchsorted(stamps, end, side="left"))
        return SeriesRecords(stamps[lower:upper], list(values[:, lower:upper]))

    def evict(self) -> None:
        """Let go of stored chunks acknowledged longer than the window ago, then of the oldest stored ones over the budget."""
        deadline = time.monotonic() - self.window_s
        with self._lock:
            for series_of_type in self._series.values():
                for series in series_of_type.values():
                    while series.chunks and series.chunks[0].acked_at < deadline and self._stored(series.chunks[0]):
                        self._let_go(series)
                self._forget_empty(series_of_type)
            if self.nbytes <= self.max_bytes:
                return
            candidates = sorted(
                (series.chunks[0].acked_at, id(series), series)
                for series_of_type in self._series.values()
                for series in series_of_type.values()
                if series.chunks and self._stored(series.chunks[0])
            )
            for _, _, series in candidates:
                while self.nbytes > self.max_bytes and series.chunks and self._stored(series.chunks[0]):
                    self._let_go(series)
                if self.nbytes <= self.max_bytes:
                    return

    def _forget_empty(self, series_of_type: dict[SeriesKey, _Series]) -> None:
        """Drop the series that hold nothing and whose every record is stored, so that series
        written once do not hold the budget for ever. A later write of one starts it afresh:
        the flusher asks the store again for its newest timestamp, which is then at least
        every timestamp the dropped entry had let go of."""
        empty = [
            key for key, series in series_of_type.items() if not series.chunks and series.generation <= self.stored_generation
        ]
        for key in empty:
            del series_of_type[key]
        self.nbytes -= _SERIES_OVERHEAD * len(empty)

    def _stored(self, chunk: _Chunk) -> bool:
        return chunk.generation <= self.stored_generation

    def _unjoin(self, series: _Series) -> None:
        if series.joined is not None:
            self.nbytes -= _nbytes(series.joined)
            series.joined = None

    def _let_go(self, series: _Series) -> None:
        """Of the series' oldest chunk."""
        chunk = series.chunks.pop(0)
        self.nbytes -= chunk.nbytes
        self._unjoin(series)
        series.let_go_through = max(series.let_go_through, chunk.high)
