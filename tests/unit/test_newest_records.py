"""The newest stored timestamp of a series: the store asked once, then raised by every insert that tells of it."""

from __future__ import annotations

from services.lib.reads.newest import NewestRecords
from services.lib.reads.pending import PendingSpans
from services.lib.reads.rollup import Span

TABLE = "storecast.production_meter"


def test_the_store_is_asked_once_then_inserts_raise_it() -> None:
    marks, newest = PendingSpans(), NewestRecords()
    marks.watch(newest)
    asked: list[int] = []

    def ask_store() -> int:
        asked.append(1)
        return 5_000

    tracked = newest.track(TABLE, 7, 1)
    assert newest.newest(tracked, ask_store) == 5_000
    version = tracked.version
    marks.add(TABLE, 1, [Span(7, 1, 1_000, 9_000)])  # marked: counted before its records are stored
    assert newest.newest(tracked, ask_store) == 9_000 and tracked.version == version + 1
    marks.stored(TABLE, [Span(7, 1, 1_000, 9_000)])
    assert tracked.version == version + 2
    marks.add(TABLE, 2, [Span(7, 1, 100, 200), Span(7, 2, 100, 20_000), Span(8, 1, 100, 20_000)])  # older; other series
    marks.add("storecast.production_battery", 3, [Span(7, 1, 100, 20_000)])
    assert newest.newest(tracked, ask_store) == 9_000
    assert asked == [1]
    assert newest.track(TABLE, 7, 1) is tracked


def test_an_insert_while_the_store_is_asked_is_counted() -> None:
    """Tracked before the question: whether or not the store's answer holds the insert, it counts."""
    marks, newest = PendingSpans(), NewestRecords()
    marks.watch(newest)
    tracked = newest.track(TABLE, 7, 1)

    def ask_store() -> None:
        marks.add(TABLE, 1, [Span(7, 1, 50_000, 60_000)])  # its records not yet visible to the question
        return None

    assert newest.newest(tracked, ask_store) == 60_000
    untracked = newest.track(TABLE, 7, 2)
    assert newest.newest(untracked, lambda: None) is None


def test_past_its_capacity_tracking_starts_over_and_readers_see_a_change() -> None:
    newest = NewestRecords(capacity=2)
    first = newest.track(TABLE, 1, 1)
    newest.track(TABLE, 1, 2)
    version = first.version
    newest.track(TABLE, 1, 3)
    assert len(newest) == 1 and first.version == version + 1
    assert newest.track(TABLE, 1, 1) is not first
