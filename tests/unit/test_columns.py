"""Decoded records to columns, and the rows that keep the last occurrence of each key."""

from __future__ import annotations

import random

import msgspec
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.lib.records.columns import last_occurrences, take, to_columns


class Reading(msgspec.Struct):
    timestamp: int
    id: int
    p: float | None = None
    label: str | None = None


RECORDS = [Reading(1000, 7, 1.5, "a"), Reading(2000, 7), Reading(3000, 8, -2.0, "é")]
FIELDS = Reading.__struct_fields__


# ---- to_columns ------------------------------------------------------------------


def test_every_field_named_becomes_a_column() -> None:
    assert to_columns(RECORDS, FIELDS) == [(1000, 2000, 3000), (7, 7, 8), (1.5, None, -2.0), ("a", None, "é")]


def test_named_fields_become_columns_in_the_order_asked() -> None:
    assert to_columns(RECORDS, ["label", "timestamp"]) == [("a", None, "é"), (1000, 2000, 3000)]
    assert to_columns(RECORDS, []) == []


def test_one_record_is_columns_of_one_value() -> None:
    assert to_columns(RECORDS[:1], FIELDS) == [(1000,), (7,), (1.5,), ("a",)]
    assert to_columns(RECORDS[:1], ["id"]) == [(7,)]


def test_decoded_records_transpose_like_the_body() -> None:
    decoder = msgspec.json.Decoder(list[Reading])
    records = decoder.decode(b'[{"timestamp":5,"id":1,"label":"x"},{"timestamp":4,"id":2,"p":1}]')
    assert to_columns(records, FIELDS) == [(5, 4), (1, 2), (None, 1.0), ("x", None)]


# ---- last_occurrences ---------------------------------------------------------------


@pytest.mark.parametrize(
    "keys",
    [
        ([1], [5]),  # one row
        ([1, 1, 1], [1, 2, 3]),  # one id in time order: the usual body
        ([1, 1, 2, 2], [5, 6, 1, 2]),  # ascending by the first key, then the second
        ([3, 1, 2], [0, 0, 0]),  # unique but not sorted
        ([1, 2, 1], [1, 1, 2]),
        ([4_294_967_295, 0], [7_258_118_399_999, 0]),  # the largest ids and timestamps
    ],
)
def test_unique_keys_keep_every_row(keys: tuple[list[int], list[int]]) -> None:
    assert last_occurrences(*keys) is None


@pytest.mark.parametrize(
    ("keys", "kept"),
    [
        (([1, 1], [5, 5]), [1]),
        (([1, 1, 1], [5, 5, 6]), [1, 2]),
        (([1, 1, 1], [6, 5, 6]), [1, 2]),
        (([2, 1, 2, 1], [0, 0, 0, 0]), [2, 3]),
        (([7, 7, 8, 7], [1, 2, 1, 1]), [1, 2, 3]),  # (7, 1) again last: its row moves to the end
        (([1, 2, 1, 2, 1], [9, 9, 9, 9, 9]), [3, 4]),
        (([5, 5, 5], [3, 3, 3]), [2]),
    ],
)
def test_duplicate_keys_keep_the_last_row_of_each_in_body_order(keys: tuple[list[int], list[int]], kept: list[int]) -> None:
    rows = last_occurrences(*keys)
    assert rows is not None
    assert rows.tolist() == kept


def test_one_key_column() -> None:
    assert last_occurrences([1, 2, 3]) is None
    assert last_occurrences([3, 2, 1]) is None
    rows = last_occurrences([3, 2, 3, 1])
    assert rows is not None and rows.tolist() == [1, 2, 3]


def test_three_key_columns() -> None:
    # (site_id, id, timestamp), as a committer merges requests.
    assert last_occurrences([1, 2, 1], [7, 7, 7], [5, 5, 6]) is None
    rows = last_occurrences([1, 2, 1, 2], [7, 7, 7, 7], [5, 5, 5, 6])
    assert rows is not None and rows.tolist() == [1, 2, 3]


def test_keys_may_be_tuples() -> None:
    rows = last_occurrences((1, 1), (5, 5))
    assert rows is not None and rows.tolist() == [1]


def reference(*keys: list[int]) -> list[int] | None:
    """The rows keeping the last of each key, by a dict."""
    last = {key: row for row, key in enumerate(zip(*keys))}
    return None if len(last) == len(keys[0]) else sorted(last.values())


def test_random_keys_match_a_dict_of_last_rows() -> None:
    generator = random.Random(20240611)
    for _ in range(300):
        rows = generator.randint(1, 40)
        spread = generator.choice([2, 5, 1000])
        ids = [generator.randrange(spread) for _ in range(rows)]
        timestamps = sorted(generator.randrange(spread) for _ in range(rows)) if generator.random() < 0.3 else None
        timestamps = timestamps or [generator.randrange(spread) for _ in range(rows)]
        kept = last_occurrences(ids, timestamps)
        expected = reference(ids, timestamps)
        assert (None if kept is None else kept.tolist()) == expected, (ids, timestamps)


# ---- take ---------------------------------------------------------------------------


def test_take_keeps_the_rows_of_every_column_in_order() -> None:
    columns = to_columns(RECORDS, FIELDS)
    assert take(columns, np.array([0, 2])) == [(1000, 3000), (7, 8), (1.5, -2.0), ("a", "é")]
    assert take(columns, np.array([1])) == [(2000,), (7,), (None,), (None,)]


def test_take_with_last_occurrences() -> None:
    ids, times = (1, 1, 2), (5, 5, 5)
    columns: list[tuple[object, ...]] = [(100, 100, 100), ids, times, (1.0, 2.0, 3.0)]
    kept = last_occurrences(ids, times)
    assert kept is not None
    assert take(columns, kept) == [(100, 100), (1, 2), (5, 5), (2.0, 3.0)]


@settings(max_examples=300, deadline=None)
@given(rows=st.lists(st.tuples(st.integers(0, 2), st.integers(0, 2), st.integers(-2, 2)), min_size=2, max_size=40))
def test_the_last_row_of_each_key_is_kept(rows: list[tuple[int, int, int]]) -> None:
    last = {key: index for index, key in enumerate(rows)}
    kept = last_occurrences(*zip(*rows))
    if len(last) == len(rows):
        assert kept is None
    else:
        assert kept is not None and kept.tolist() == sorted(last.values())
