"""The hot tier's proof of coverage at its edges, its newest-wins reads, its chunks' eviction and its budget."""

from __future__ import annotations

import time

import numpy as np
import pytest

from services.lib.recent.hot import _CHUNK_ROWS, HotTier
from storecast.catalog import EQUIPMENT_TYPES

METER = EQUIPMENT_TYPES["meter"]
NOW_MS = 1_800_000_000_000


def _tier(window_s: float = 3600, max_bytes: int = 1 << 30) -> HotTier:
    return HotTier([METER], window_s, max_bytes)


def _add(tier: HotTier, stamps: list[int], value: float, generation: int = 1, record_id: int = 1, now_ms: int = NOW_MS) -> None:
    columns = [np.full(len(stamps), value)] + [np.full(len(stamps), np.nan) for _ in METER.attributes[1:]]
    ids = np.full(len(stamps), record_id, dtype=np.uint32)
    tier.add("meter", 100, ids, np.array(stamps, dtype=np.int64), columns, generation, now_ms)


def _values(tier: HotTier, start: int | None, end: int | None) -> list[tuple[int, float]] | None:
    records = tier.read("meter", 100, 1, start, end)
    return None if records is None else list(zip(records.timestamps.tolist(), records.attributes[0].tolist()))


def test_nothing_is_answered_before_the_store_was_asked_about_the_series() -> None:
    tier = _tier()
    _add(tier, [NOW_MS - 10, NOW_MS - 5], 1.0)
    assert tier.unestablished("meter", [(100, 1), (100, 2)]) == [(100, 1)]
    assert _values(tier, NOW_MS - 100, NOW_MS) is None
    tier.establish("meter", {(100, 1): None})
    assert _values(tier, None, None) == [(NOW_MS - 10, 1.0), (NOW_MS - 5, 1.0)]


def test_coverage_starts_just_past_the_newest_stored_timestamp() -> None:
    tier = _tier()
    _add(tier, [NOW_MS - 10, NOW_MS - 5], 1.0)
    tier.establish("meter", {(100, 1): NOW_MS - 20})
    assert _values(tier, NOW_MS - 19, NOW_MS) == [(NOW_MS - 10, 1.0), (NOW_MS - 5, 1.0)]
    assert _values(tier, NOW_MS - 20, NOW_MS) is None  # the stored record at -20 is not in memory
    assert _values(tier, None, NOW_MS) is None


def test_records_older_than_the_window_are_not_kept_and_move_coverage_past_them() -> None:
    tier = _tier(window_s=60)
    tier.establish("meter", {(100, 1): None})
    _add(tier, [NOW_MS - 120_000, NOW_MS - 1_000], 2.0)
    _add(tier, [NOW_MS - 500], 3.0)
    tier.establish("meter", {(100, 1): None})
    assert _values(tier, NOW_MS - 120_000 + 1, NOW_MS) == [(NOW_MS - 1_000, 2.0), (NOW_MS - 500, 3.0)]
    assert _values(tier, NOW_MS - 120_000, NOW_MS) is None


def test_the_last_acknowledged_version_of_a_timestamp_wins_also_after_compaction() -> None:
    tier = _tier()
    for version in range(100):
        _add(tier, [NOW_MS - 3, NOW_MS - 2 - version % 2], float(version))
    tier.establish("meter", {(100, 1): None})
    assert _values(tier, None, None) == [(NOW_MS - 3, 99.0), (NOW_MS - 2, 98.0)]


def _full_chunk(tier: HotTier, first: int, value: float, generation: int = 1) -> list[int]:
    """A request of a chunk's rows: a chunk of its own (acknowledged when its first was new, all kept in a short window)."""
    stamps = list(range(first, first + _CHUNK_ROWS))
    _add(tier, stamps, value, generation, now_ms=first)
    return stamps


def test_only_stored_chunks_are_evicted_and_eviction_moves_coverage_past_them() -> None:
    tier = _tier(window_s=0.05)
    tier.establish("meter", {(100, 1): None})
    old = _full_chunk(tier, NOW_MS - 1_000, 1.0, generation=1)
    _add(tier, [NOW_MS - 20], 2.0, generation=2)
    tier.establish("meter", {(100, 1): None})
    time.sleep(0.1)
    tier.evict()  # nothing stored yet: all kept
    assert _values(tier, NOW_MS - 1_000, NOW_MS) == [(stamp, 1.0) for stamp in old] + [(NOW_MS - 20, 2.0)]
    tier.stored_generation = 1
    tier.evict()
    assert _values(tier, old[-1], NOW_MS) is None
    assert _values(tier, old[-1] + 1, NOW_MS) == [(NOW_MS - 20, 2.0)]


def test_small_requests_share_a_chunk_and_it_goes_once_all_of_it_is_stored() -> None:
    tier = _tier(window_s=0.05)
    tier.establish("meter", {(100, 1): None})
    _add(tier, [NOW_MS - 30], 1.0, generation=1)
    _add(tier, [NOW_MS - 20], 2.0, generation=2)
    tier.establish("meter", {(100, 1): None})
    time.sleep(0.1)
    tier.stored_generation = 1
    tier.evict()  # the chunk also holds generation 2, not stored yet
    assert _values(tier, NOW_MS - 40, NOW_MS) == [(NOW_MS - 30, 1.0), (NOW_MS - 20, 2.0)]
    tier.stored_generation = 2
    tier.evict()
    assert _values(tier, NOW_MS - 20, NOW_MS) is None


def test_window_eviction_goes_chunk_by_chunk_by_time_of_acknowledgement() -> None:
    tier = _tier(window_s=0.32)  # a chunk takes records for 0.01 s
    tier.establish("meter", {(100, 1): None})
    _add(tier, [NOW_MS - 30], 1.0)
    time.sleep(0.2)
    _add(tier, [NOW_MS - 20], 2.0)  # a chunk of its own: the first is too old to take it
    tier.establish("meter", {(100, 1): None})
    time.sleep(0.2)  # the first chunk is past the window, the second is not
    tier.stored_generation = 1
    tier.evict()
    assert _values(tier, NOW_MS - 30, NOW_MS) is None
    assert _values(tier, NOW_MS - 29, NOW_MS) == [(NOW_MS - 20, 2.0)]


def test_the_last_acknowledged_version_wins_across_chunks() -> None:
    tier = _tier()
    first = _full_chunk(tier, NOW_MS - 1_000, 1.0)
    _add(tier, [first[5]], 2.0)  # into a new, small chunk
    second = _full_chunk(tier, first[-10], 3.0)  # overlaps the first chunk's end
    _add(tier, [first[5], second[-1]], 4.0)
    tier.establish("meter", {(100, 1): None})
    expected = dict.fromkeys(first, 1.0) | dict.fromkeys(second, 3.0) | {first[5]: 4.0, second[-1]: 4.0}
    assert _values(tier, None, None) == sorted(expected.items())


def test_replacing_a_key_again_and_again_holds_one_version() -> None:
    tier = _tier()
    _add(tier, [NOW_MS - 3, NOW_MS - 2], 0.0)
    held = tier.nbytes
    for version in range(1, 1_000):
        _add(tier, [NOW_MS - 2], float(version))
    assert tier.nbytes <= held + 2 * _CHUNK_ROWS * (8 + 8 * len(METER.attributes))
    tier.establish("meter", {(100, 1): None})
    assert _values(tier, None, None) == [(NOW_MS - 3, 0.0), (NOW_MS - 2, 999.0)]


def test_the_budget_counts_the_values_an_overhead_and_the_joined_copy() -> None:
    tier = _tier()
    _add(tier, [NOW_MS - 7_200_000], 1.0)  # older than the window: a series that holds nothing
    empty_series = tier.nbytes
    assert empty_series > 0
    tier = _tier()
    rows = 10 * _CHUNK_ROWS
    _add(tier, list(range(NOW_MS - rows, NOW_MS)), 1.0)
    values = rows * (8 + 8 * len(METER.attributes))
    held = tier.nbytes
    assert values + empty_series < held < 1.1 * values
    tier.establish("meter", {(100, 1): None})
    _values(tier, None, None)
    assert tier.nbytes >= held + values  # the joined copy a read keeps
    _add(tier, [NOW_MS], 1.0)  # a change lets go of it
    assert tier.nbytes < held + values


def test_the_memory_budget_lets_go_of_the_oldest_stored_records_first() -> None:
    tier = _tier(max_bytes=1)
    tier.establish("meter", {(100, 1): None})
    old = _full_chunk(tier, NOW_MS - 1_000, 1.0, generation=1)
    _add(tier, [NOW_MS - 20], 2.0, generation=2)
    tier.establish("meter", {(100, 1): None})
    tier.stored_generation = 1
    tier.evict()
    assert _values(tier, old[-1] + 1, NOW_MS) == [(NOW_MS - 20, 2.0)]  # the unstored chunk stays
    tier.stored_generation = 2
    tier.evict()
    assert _values(tier, NOW_MS - 19, NOW_MS) is None  # nothing left to answer from
    empty = _tier()
    _add(empty, [NOW_MS - 7_200_000], 1.0)
    assert tier.nbytes == empty.nbytes  # what a series holds once all of it is let go of


@pytest.mark.parametrize("window_s,max_bytes", [(0, 1 << 20), (3600, 0)])
def test_a_tier_of_no_window_or_no_bytes_keeps_nothing(window_s: float, max_bytes: int) -> None:
    tier = _tier(window_s, max_bytes)
    _add(tier, [NOW_MS - 1], 1.0)
    tier.establish("meter", {(100, 1): None})
    assert tier.nbytes == 0 and _values(tier, None, None) is None


def test_a_series_that_holds_nothing_and_is_stored_is_forgotten_and_its_bytes_with_it() -> None:
    tier = _tier(window_s=0.05)
    _add(tier, [NOW_MS - 30], 1.0, generation=1)
    tier.establish("meter", {(100, 1): None})
    time.sleep(0.1)
    tier.evict()  # not stored yet: kept
    assert tier.nbytes > 0 and _values(tier, NOW_MS - 30, NOW_MS) == [(NOW_MS - 30, 1.0)]
    tier.stored_generation = 1
    tier.evict()
    assert tier.nbytes == 0 and _values(tier, None, None) is None
    # Written again, the series waits for the store's newest timestamp, as a new one does.
    _add(tier, [NOW_MS - 10], 2.0, generation=2)
    assert tier.unestablished("meter", [(100, 1)]) == [(100, 1)]
    tier.establish("meter", {(100, 1): NOW_MS - 30})
    assert _values(tier, NOW_MS - 30, NOW_MS) is None
    assert _values(tier, NOW_MS - 29, NOW_MS) == [(NOW_MS - 10, 2.0)]


def test_a_series_whose_records_were_not_kept_is_remembered_until_they_are_stored() -> None:
    tier = _tier(window_s=60)
    _add(tier, [NOW_MS - 120_000], 1.0, generation=1)  # older than the window: not kept, not stored yet
    tier.establish("meter", {(100, 1): None})
    tier.evict()
    _add(tier, [NOW_MS - 500], 2.0, generation=2)
    # The flusher's next block: the store does not hold -120 000 yet either.
    tier.establish("meter", {(100, 1): None})
    # The entry still knows it let go of -120 000: a read from there is not memory's to answer.
    assert _values(tier, NOW_MS - 120_000, NOW_MS) is None
    assert _values(tier, NOW_MS - 119_999, NOW_MS) == [(NOW_MS - 500, 2.0)]
