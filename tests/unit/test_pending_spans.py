"""The rollup marks the ingest's process holds give the store's lookup (plan.first_pending_sql)'s answers;
tests/unit/test_plans.py checks them against the store's own over Hypothesis' inserts."""

from __future__ import annotations

from services.lib.reads.pending import PendingSpans
from services.lib.reads.rollup import EVERY_TABLE, Span

RAW, OTHER = "db.production_battery", "db.production_meter"


def test_nothing_is_answered_before_the_store_s_marks_are_loaded() -> None:
    marks = PendingSpans()
    marks.add(RAW, 1, [Span(1, 7, 100, 200)])
    known_before = marks.known
    marks.load([(RAW, 1, 8, 2, 50, 60)])
    assert (known_before, marks.known) == (False, True)
    assert marks.first_pending(RAW, 1, 7, 0, 1_000) == 100
    assert marks.first_pending(RAW, 1, 8, 0, 1_000) == 50


def test_the_first_pending_timestamp_of_the_marks_that_meet_the_range() -> None:
    marks = PendingSpans()
    marks.load([])
    marks.add(RAW, 1, [Span(1, 7, 100, 200), Span(1, 8, 0, 10)])
    marks.add(RAW, 2, [Span(1, 7, 500, 600)])
    assert marks.first_pending(RAW, 1, 7, 0, 100) is None  # [start, end[: a mark from `end` on is outside
    assert marks.first_pending(RAW, 1, 7, 0, 101) == 100
    assert marks.first_pending(RAW, 1, 7, 200, 300) == 100  # a mark's last is inside: from its first
    assert marks.first_pending(RAW, 1, 7, 201, 500) is None
    assert marks.first_pending(RAW, 1, 7, 150, 700) == 100
    assert marks.first_pending(RAW, 1, 7, 550, 700) == 500
    assert marks.first_pending(OTHER, 1, 7, 0, 1_000) is None  # another table's series
    assert marks.first_pending(RAW, 2, 7, 0, 1_000) is None  # another site's


def test_a_token_s_marks_go_together_whatever_their_series() -> None:
    marks = PendingSpans()
    marks.load([])
    marks.add(RAW, 1, [Span(1, 7, 100, 200), Span(1, 8, 100, 200)])
    marks.add(RAW, 2, [Span(1, 7, 150, 160)])
    assert len(marks) == 3
    marks.discard([1, 99])  # 99: a mark this process never held (another's, or gone already)
    assert marks.first_pending(RAW, 1, 7, 0, 1_000) == 150
    assert marks.first_pending(RAW, 1, 8, 0, 1_000) is None
    marks.discard([2])
    assert len(marks) == 0 and marks.first_pending(RAW, 1, 7, 0, 1_000) is None


def test_one_insert_s_spans_of_a_series_are_held_as_one() -> None:
    marks = PendingSpans()
    marks.load([(RAW, 1, 7, 5, 300, 400)])
    marks.add(RAW, 5, [Span(1, 7, 100, 200)])
    assert len(marks) == 1
    assert marks.first_pending(RAW, 1, 7, 250, 260) == 100  # [100, 400] as one


def test_the_mark_that_no_cell_can_be_trusted_covers_every_range_until_done() -> None:
    marks = PendingSpans()
    marks.load([(EVERY_TABLE, 0, 0, 0, 0, 2**62)])
    assert marks.first_pending(RAW, 1, 7, 500, 600) == 0
    marks.everything_done()
    assert marks.first_pending(RAW, 1, 7, 500, 600) is None


def test_a_table_s_first_pending_timestamp_is_the_first_of_any_of_its_series() -> None:
    marks = PendingSpans()
    marks.load([])
    assert marks.first_pending_in(RAW) is None
    marks.add(RAW, 1, [Span(1, 7, 500, 600), Span(2, 7, 300, 400)])
    marks.add(OTHER, 2, [Span(1, 7, 100, 200)])
    assert (marks.first_pending_in(RAW), marks.first_pending_in(OTHER)) == (300, 100)
    marks.discard([1])
    assert marks.first_pending_in(RAW) is None
    marks.load([(EVERY_TABLE, 0, 0, 0, 0, 2**62)])
    assert marks.first_pending_in(RAW) == 0
