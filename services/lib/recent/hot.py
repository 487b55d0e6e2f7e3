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
# Past this many blocks a series' blocks are joined into one: a series PUT once a second holds 3,600 an hour.
_COMPACT_AT = 64


@dataclass(slots=True)
class _Block:
    """Records of one series from one or more acknowledged requests; keys unique within it."""

    timestamps: np.ndarray  # int64
    attributes: list[np.ndarray]  # float64 each, NaN where null
    acked_at: float  # monotonic time of the newest acknowledgement in it
    generation: int  # the flush that stores it (stored once the flusher's stored generation reaches it)

    @property
    def nbytes(self) -> int:
        return self.timestamps.nbytes + sum(column.nbytes for column in self.attributes)


@dataclass(slots=True)
class _Series:
    blocks: list[_Block] = field(default_factory=list)
    stored_after: int | None = None  # see the module's docstring
    established: bool = False
    let_go_through: int = -1  # the newest timestamp not in memory for a reason of this tier's own
    joined: tuple[np.ndarray, list[np.ndarray]] | None = None  # the blocks joined, until they change

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


def _nbytes(joined: tuple[np.ndarray, list[np.ndarray]]) -> int:
    return joined[0].nbytes + sum(column.nbytes for column in joined[1])


def _joined(blocks: Sequence[_Block]) -> tuple[np.ndarray, list[np.ndarray]]:
    """The blocks' rows ascending by timestamp, the last acknowledged row of each timestamp."""
    timestamps = np.concatenate([block.timestamps for block in blocks])
    attributes = [np.concatenate(parts) for parts in zip(*(block.attributes for block in blocks))]
    reversed_order = timestamps[::-1]
    unique, first_in_reversed = np.unique(reversed_order, return_index=True)
    rows = len(timestamps) - 1 - first_in_reversed
    return unique, [column[rows] for column in attributes]


def _rows_by_id(ids: np.ndarray) -> list[tuple[int, np.ndarray]]:
    """Each id of a request with its rows, in request order within the id."""
    if not len(ids):
        return []
    first = int(ids[0])
    if (ids == first).all():  # the usual request: one equipment, often one record
        return [(first, np.arange(len(ids)))]
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
        self.stored_generation = 0  # every block of a generation up to this one is in the store

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
                stamps = timestamps[rows]
                recent = stamps >= oldest_kept
                if not recent.all():
                    series.let_go_through = max(series.let_go_through, int(stamps[~recent].max()))
                    rows = rows[recent]
                    stamps = stamps[recent]
                if not len(rows):
                    continue
                block = _Block(stamps, [column[rows] for column in attributes], acked_at, generation)
                series.blocks.append(block)
                self._unjoin(series)
                self.nbytes += block.nbytes
                if len(series.blocks) > _COMPACT_AT:
                    self._compact(series)

    def _compact(self, series: _Series) -> None:
        before = sum(block.nbytes for block in series.blocks)
        stamps, columns = _joined(series.blocks)
        newest = series.blocks[-1]
        series.blocks = [_Block(stamps, columns, newest.acked_at, max(b.generation for b in series.blocks))]
        self.nbytes += series.blocks[0].nbytes - before

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
            if covered_from is None or (start if start is not None else 0) < covered_from or not series.blocks:
                return None
            if series.joined is None:
                # A polled series is joined once per change, not once per read (its bytes count too).
                series.joined = _joined(series.blocks)
                self.nbytes += _nbytes(series.joined)
            stamps, columns = series.joined
        lower = 0 if start is None else int(np.searchsorted(stamps, start, side="left"))
        upper = len(stamps) if end is None else int(np.searchsorted(stamps, end, side="left"))
        return SeriesRecords(stamps[lower:upper], [column[lower:upper] for column in columns])

    def evict(self) -> None:
        """Let go of stored blocks acknowledged longer than the window ago, then of the oldest stored ones over the budget."""
        deadline = time.monotonic() - self.window_s
        with self._lock:
            for series_of_type in self._series.values():
                for series in series_of_type.values():
                    while series.blocks and series.blocks[0].acked_at < deadline and self._stored(series.blocks[0]):
                        self._let_go(series, series.blocks.pop(0))
            if self.nbytes <= self.max_bytes:
                return
            candidates = sorted(
                (series.blocks[0].acked_at, id(series), series)
                for series_of_type in self._series.values()
                for series in series_of_type.values()
                if series.blocks and self._stored(series.blocks[0])
            )
            for _, _, series in candidates:
                while self.nbytes > self.max_bytes and series.blocks and self._stored(series.blocks[0]):
                    self._let_go(series, series.blocks.pop(0))
                if self.nbytes <= self.max_bytes:
                    return

    def _stored(self, block: _Block) -> bool:
        return block.generation <= self.stored_generation

    def _unjoin(self, series: _Series) -> None:
        if series.joined is not None:
            self.nbytes -= _nbytes(series.joined)
            series.joined = None

    def _let_go(self, series: _Series, block: _Block) -> None:
        self.nbytes -= block.nbytes
        self._unjoin(series)
        if len(block.timestamps):
            series.let_go_through = max(series.let_go_through, int(block.timestamps.max()))
