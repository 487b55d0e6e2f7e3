"""The rollup spans pending in the store, as the one process that marks them knows them.

Before it may take rollup cells, an aggregated read asks for the first
pending timestamp of its series and range (services/lib/reads/plan.py). Asked
of the store, that is a query of its own: about 5 ms of a 20-25 ms read on
chDB. But the embedded store is opened by one process only (chDB locks its
directory), `serve all`'s: that process writes every mark and its maintainer
deletes every mark, so it can hold them in memory and answer the lookup
without the engine. A store served to several processes (a ClickHouse server,
a cluster) is always asked: another process's inserts mark spans too. Here,

- a mark is added here before its records are inserted, and dropped again if
  the insert fails (a failed insert's records are acknowledged to nobody yet:
  the PUT fails, or the flusher retries them under a new mark before any read
  that syncs gets past them);
- a maintainer round drops the marks it deleted, once it has deleted them;
- the marks a previous process left in the store are loaded before the
  first read trusts this (`load`, after the maintainer's start-up re-marking).

So whenever the store says a span is pending, so does this (it may say so a
little longer, which only sends a read to the raw records).

Being told of every insert of the store, this is also where the answers kept
of settled reads (services/query/answer_cache.py) learn that a write changes
their range: its watchers hear of each insert's spans twice, as they are marked
(before the records are stored) and once they are stored.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from services.lib.reads.rollup import EVERY_TABLE, Span

# (site_id, id) of a raw table
_SeriesKey = tuple[int, int]


@dataclass(slots=True)
class _Marks:
    # raw table -> series -> token -> (first, last)
    by_table: dict[str, dict[_SeriesKey, dict[int, tuple[int, int]]]] = field(default_factory=dict)
    series_of: dict[int, list[tuple[str, _SeriesKey]]] = field(default_factory=dict)  # token -> its series
    everything: bool = False  # a mark that no cell can be trusted (rollup.EVERY_TABLE)


class Watcher(Protocol):
    def changing(self, table: str, spans: Sequence[Span]) -> None:
        """The spans' records are being stored in the raw table: a read of them may see them or not."""


class PendingSpans:
    """Thread-safe; its lookups answer only once `load` has run (`known`)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._marks = _Marks()
        self._loaded = False
        self._watchers: list[Watcher] = []

    def watch(self, watcher: Watcher) -> None:
        """`watcher` hears of every insert's spans from now on (before any read, as the services start)."""
        self._watchers.append(watcher)

    @property
    def known(self) -> bool:
        return self._loaded

    def load(self, rows: Iterable[Sequence[Any]]) -> None:
        """The store's pending rows (tbl, site_id, id, token, first, last), added to what is held."""
        with self._lock:
            for table, site_id, record_id, token, first, last in rows:
                if table == EVERY_TABLE:
                    self._marks.everything = True
                else:
                    self._add(str(table), int(token), (int(site_id), int(record_id)), int(first), int(last))
            self._loaded = True

    def add(self, table: str, token: int, spans: Sequence[Span]) -> None:
        """An insert's spans, pending before its records are stored."""
        with self._lock:
            for span in spans:
                self._add(table, token, (span.site_id, span.id), span.first, span.last)
        for watcher in self._watchers:
            watcher.changing(table, spans)

    def stored(self, table: str, spans: Sequence[Span]) -> None:
        """The records of an insert's spans (`add`) are stored: every read from now on sees them."""
        for watcher in self._watchers:
            watcher.changing(table, spans)

    def _add(self, table: str, token: int, series: _SeriesKey, first: int, last: int) -> None:
        marks = self._marks.by_table.setdefault(table, {}).setdefault(series, {})
        held = marks.get(token)
        marks[token] = (first, last) if held is None else (min(first, held[0]), max(last, held[1]))
        if held is None:
            self._marks.series_of.setdefault(token, []).append((table, series))

    def discard(self, tokens: Iterable[int]) -> None:
        """The marks of these tokens are gone from the store (or were never written)."""
        with self._lock:
            for token in tokens:
                for table, series in self._marks.series_of.pop(token, ()):
                    of_table = self._marks.by_table[table]
                    marks = of_table[series]
                    del marks[token]
                    if not marks:
                        del of_table[series]

    def everything_done(self) -> None:
        """The mark that no cell can be trusted is gone: every stored span was marked in its place."""
        with self._lock:
            self._marks.everything = False

    def first_pending(self, table: str, site_id: int, record_id: int, start: int, end: int) -> int | None:
        """plan.first_pending_sql's answer: the first pending timestamp of the series within [start, end[
        (0 if no cell can be trusted), None if none is pending there."""
        with self._lock:
            if self._marks.everything:
                return 0
            marks = self._marks.by_table.get(table, {}).get((site_id, record_id), {})
            firsts = [first for first, last in marks.values() if last >= start and first < end]
        return min(firsts) if firsts else None

    def first_pending_in(self, table: str) -> int | None:
        """The first pending timestamp of any series of the table (0 if no cell can be trusted), None if none."""
        with self._lock:
            if self._marks.everything:
                return 0
            series = self._marks.by_table.get(table, {})
            return min((first for marks in series.values() for first, _ in marks.values()), default=None)

    def __len__(self) -> int:
        """The marks held, one per token and series."""
        with self._lock:
            return sum(len(marks) for series in self._marks.by_table.values() for marks in series.values())
