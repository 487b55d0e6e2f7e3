"""The newest stored timestamp of a series, as the one process that writes the embedded store knows it.

An aggregated read whose range ends past every stored record of its series (a
day "so far", a dashboard's range up to now) finds no record between its end
and the end of the cell its end falls in, so it may take that cell whole
rather than the records of its last, partial minute
(services/lib/reads/plan.cells_plan): a query of the rollup table alone costs
the engine about 6 ms less than one of the rollup and raw tables (13 against
18 ms for a 15-min average of 20,000 s of meter-3p, 2 s after the writes).

The store is asked once per series (the newest timestamp it holds), then each
insert of the series raises it: this process hears of every insert of the
embedded store through its rollup marks (services/lib/reads/pending.py), once
as they are marked and once stored. A series is tracked from before the store
is asked, so an insert racing that question is counted either way.

One case is left, and a read checks it after its query: an insert newer than
its end, marked and stored and its cells recomputed between the read's lookup
and its query, would put a record past the end in the cell it takes whole.
Every insert bumps its series' `version` once stored, before any maintainer
can see its mark, so a read whose version changed meanwhile queries again
without taking any cell past its end.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from services.lib.reads.rollup import Span

# (raw table, site_id, id)
SeriesKey = tuple[str, int, int]


@dataclass(slots=True)
class TrackedSeries:
    """What is known of one series' newest stored timestamp. `version` changes with every
    insert of the series (and when the series stops being tracked)."""

    version: int = 0
    asked: bool = False  # the store's answer is in `stored`
    stored: int | None = None  # the newest timestamp the store held when asked (None: no record)
    written: int | None = None  # the newest timestamp inserted since the series was tracked


class NewestRecords:
    """PendingSpans' watcher; thread-safe. At most `capacity` series: past it, tracking starts over."""

    def __init__(self, capacity: int = 1_000_000) -> None:
        self._lock = threading.Lock()
        self._series: dict[SeriesKey, TrackedSeries] = {}
        self._capacity = capacity

    def track(self, table: str, site_id: int, record_id: int) -> TrackedSeries:
        key = (table, site_id, record_id)
        with self._lock:
            tracked = self._series.get(key)
            if tracked is None:
                if len(self._series) >= self._capacity:
                    for dropped in self._series.values():
                        dropped.version += 1  # a read holding it queries again: no insert updates it now
                    self._series.clear()
                tracked = self._series[key] = TrackedSeries()
            return tracked

    def newest(self, tracked: TrackedSeries, ask_store: Callable[[], int | None]) -> int | None:
        """The newest stored timestamp of the series or later (None: none stored), asking the store the first time."""
        with self._lock:
            asked = tracked.asked
        if not asked:
            stored = ask_store()
            with self._lock:
                tracked.stored, tracked.asked = stored, True
        with self._lock:
            known = [t for t in (tracked.stored, tracked.written) if t is not None]
        return max(known) if known else None

    def changing(self, table: str, spans: Sequence[Span]) -> None:
        with self._lock:
            for span in spans:
                tracked = self._series.get((table, span.site_id, span.id))
                if tracked is not None:
                    tracked.written = span.last if tracked.written is None else max(tracked.written, span.last)
                    tracked.version += 1

    def __len__(self) -> int:
        with self._lock:
            return len(self._series)
