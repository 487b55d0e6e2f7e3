"""The answers kept of settled reads: kept, found again, and dropped by every insert that changes them."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from services.lib.reads.pending import PendingSpans
from services.lib.reads.rollup import MINUTE, Span
from services.query.answer_cache import AnswerCache, first_kept_start
from storecast.v1 import records_pb2

TABLE = "storecast.production_meter"
SERIES = (TABLE, 7, 1)
START, END = 10 * MINUTE, 20 * MINUTE


class Store:
    """Stands for the store's reads: counts them, answers what it holds now."""

    def __init__(self) -> None:
        self.value = b"[1]"
        self.reads = 0
        self.during: Callable[[], None] | None = None

    def read(self) -> records_pb2.Records:
        self.reads += 1
        answer = records_pb2.Records(results_json=self.value, count=1)
        if self.during is not None:
            self.during()
        return answer


def _ask(cache: AnswerCache, store: Store, key: bytes = b"k", start: int = START, end: int = END, horizon: int = 0) -> bytes:
    return cache.answer(key, SERIES, start, end, horizon, store.read).results_json


def test_a_read_asked_again_is_answered_from_memory() -> None:
    cache, store = AnswerCache(1 << 20), Store()
    assert _ask(cache, store) == b"[1]"
    assert _ask(cache, store) == b"[1]"
    assert store.reads == 1
    assert _ask(cache, store, key=b"other") == b"[1]"
    assert store.reads == 2


@pytest.mark.parametrize(
    ("span", "dropped"),
    [
        (Span(7, 1, START, START), True),  # at the range's first millisecond
        (Span(7, 1, END - 1, END + MINUTE), True),  # at its last
        (Span(7, 1, 0, 100 * MINUTE), True),  # around it
        (Span(7, 1, END, END + MINUTE), False),  # from its end on
        (Span(7, 1, 0, START - 1), False),  # before it
        (Span(7, 2, START, END), False),  # another id
        (Span(8, 1, START, END), False),  # another site
    ],
)
def test_an_insert_drops_the_answers_whose_range_it_overlaps(span: Span, dropped: bool) -> None:
    marks, cache, store = PendingSpans(), AnswerCache(1 << 20), Store()
    marks.watch(cache)
    _ask(cache, store)
    store.value = b"[2]"
    marks.add(TABLE, 1, [span])
    assert _ask(cache, store) == (b"[2]" if dropped else b"[1]")
    marks.add("storecast.production_battery", 2, [Span(7, 1, START, END)])  # another table
    assert _ask(cache, store) == (b"[2]" if dropped else b"[1]")


@pytest.mark.parametrize("step", ["marked", "stored"])
def test_a_read_racing_an_insert_keeps_nothing(step: str) -> None:
    """The insert is marked, or stored, while the read is under way: its answer may or may not hold its records."""
    marks, cache, store = PendingSpans(), AnswerCache(1 << 20), Store()
    marks.watch(cache)
    span = Span(7, 1, START + 5, START + 5)
    store.during = (lambda: marks.add(TABLE, 1, [span])) if step == "marked" else (lambda: marks.stored(TABLE, [span]))
    _ask(cache, store)
    store.during = None
    _ask(cache, store)
    assert store.reads == 2
    assert len(cache) == 1  # the second read's answer is kept


def test_a_read_that_fails_keeps_nothing_and_blocks_nothing() -> None:
    cache = AnswerCache(1 << 20)

    def failing() -> records_pb2.Records:
        raise RuntimeError("the store is down")

    with pytest.raises(RuntimeError):
        cache.answer(b"k", SERIES, START, END, 0, failing)
    assert len(cache) == 0
    store = Store()
    _ask(cache, store)
    _ask(cache, store)
    assert store.reads == 1


def test_a_range_reaching_past_the_horizon_is_never_kept() -> None:
    """Records expire there without any insert: an answer would outlive them."""
    cache, store = AnswerCache(1 << 20), Store()
    horizon = START - MINUTE + 1  # its next minute is the range's start: kept
    assert first_kept_start(horizon) == START
    _ask(cache, store, horizon=horizon)
    _ask(cache, store, horizon=horizon)
    assert store.reads == 1
    _ask(cache, store, horizon=START + 1)  # the horizon moved into the range
    _ask(cache, store, horizon=START + 1)
    assert store.reads == 3
    assert len(cache) == 0


def test_the_budget_bounds_what_is_kept_least_recently_used_out_first() -> None:
    budget = 16 * 1024
    cache, store = AnswerCache(budget), Store()
    store.value = b"x" * 1000
    for n in range(40):
        _ask(cache, store, key=b"%d" % n)
        _ask(cache, store, key=b"0")  # the first stays in use
    assert cache.nbytes <= budget
    assert 0 < len(cache) < 40
    reads = store.reads
    _ask(cache, store, key=b"0")
    assert store.reads == reads
    _ask(cache, store, key=b"1")  # long gone
    assert store.reads == reads + 1
    store.value = b"x" * (budget // 4)  # more than a quarter of the budget
    _ask(cache, store, key=b"large")
    _ask(cache, store, key=b"large")
    assert store.reads == reads + 3
