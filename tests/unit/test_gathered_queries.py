"""Reads gathered into one query get the very bytes each gets alone (services/query/gathered.py).

The reference is a read alone: production_sql's JSON array, cut by
limit_array, as the query service answers a read that shares nothing. Records
are inserted twice over (the second insert replaces some, nulls included), so
the newest version of each must win within a gathered query too.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.lib.reads.render import JSON_ARRAY_FORMAT, RenderedArray, limit_array
from services.lib.reads.window import Window
from services.lib.rpc.metrics import READS_PER_QUERY
from services.lib.store.engine import Store
from services.lib.store.schema import PRODUCTION_TABLES
from services.query.gathered import GatheredReads, WantedRange, gathered_sql
from services.query.sql import production_sql
from storecast.catalog import EQUIPMENT_TYPES

BATTERY = EQUIPMENT_TYPES["battery"]
TABLE = f"storecast.{PRODUCTION_TABLES['battery'].name}"
T0 = 1_700_000_000_000
SERIES = [(1, 1), (1, 2), (2, 1)]
RECORDS = 200  # per series, 1 s apart


@pytest.fixture(scope="module")
def store() -> Iterator[Store]:
    store = Store("chdb://memory", pool_size=4)
    for statement in PRODUCTION_TABLES["battery"].ddl("storecast"):
        store.apply([statement])
    names = ["site_id", "id", "timestamp", *(a.name for a in BATTERY.attributes)]
    for version in (0, 1):
        rows = [
            [
                site,
                record_id,
                T0 + k * 1000,
                *(
                    None if (k + index) % 7 == 0 else float(version * 1000 + k + index)
                    for index, _ in enumerate(BATTERY.attributes)
                ),
            ]
            for site, record_id in SERIES
            for k in range(RECORDS)
            if version == 0 or k % 3 == 0  # the second insert replaces a third of the records
        ]
        with store.client() as client:
            client.insert(TABLE, rows, column_names=names)
    yield store
    store.close()


def alone(store: Store, wanted: WantedRange) -> RenderedArray:
    parameters = {"site_id": wanted.site_id, "id": wanted.id, "start": wanted.start, "end": wanted.end, "horizon": 0}
    sql = production_sql(TABLE, BATTERY, Window(wanted.start, wanted.end, None, None), wanted.limit + 1)
    with store.client() as client:
        return limit_array(client.raw_query(sql, parameters, fmt=JSON_ARRAY_FORMAT), wanted.limit)


edges = st.integers(-5, RECORDS + 5).map(lambda k: T0 + k * 1000 + (k % 2) * 300)


def _wanted(series: tuple[int, int], a: int, b: int, limit: int) -> WantedRange:
    return WantedRange(series[0], series[1], min(a, b), max(a, b), limit)


wanted_ranges = st.builds(
    _wanted,
    st.sampled_from([*SERIES, (3, 3)]),  # (3, 3): nothing stored
    edges,
    edges,
    st.sampled_from([5, 100_000]),
)


@settings(max_examples=30, deadline=None)
@given(ranges=st.lists(wanted_ranges, min_size=1, max_size=12))
def test_one_query_answers_each_read_as_it_is_answered_alone(store: Store, ranges: list[WantedRange]) -> None:
    for limit, group in itertools.groupby(sorted(ranges, key=lambda r: r.limit), key=lambda r: r.limit):
        # One query per set of ranges that do not meet (GatheredReads._take's rule), the same range once.
        distinct: list[WantedRange] = []
        for wanted in group:
            if wanted not in distinct and not any(wanted.meets(other) for other in distinct):
                distinct.append(wanted)
        with store.client() as client:
            lines = client.raw_query(gathered_sql(TABLE, BATTERY, distinct), fmt="TabSeparated")
        by_range: dict[int, list[bytes]] = {}
        for line in lines.splitlines():
            n, _, record = line.partition(b"\t")
            by_range.setdefault(int(n), []).append(record)
        for index, wanted in enumerate(distinct, start=1):
            want = alone(store, wanted)
            rows = by_range.get(index, [])
            assert len(rows) <= limit + 1
            assert b"[" + b",\n".join(rows[:limit]) + b"]" == want.results, wanted


def test_concurrent_reads_share_queries_and_each_gets_its_own_answer(store: Store) -> None:
    """Threads released at once, reads overlapping, repeated and apart: most wait and go together, two queries at a time."""
    gathered = GatheredReads(store, max_queries=2)
    reads = [
        WantedRange(site, record_id, T0 + start * 1000, T0 + (start + length) * 1000, limit)
        for (site, record_id), start, length, limit in itertools.product(SERIES, (0, 10, 15, 150), (1, 20), (5, 100_000))
    ]
    want = {wanted: alone(store, wanted) for wanted in reads}
    before_count, before_sum = _observed()
    answers: dict[int, list[RenderedArray]] = {}
    barrier = threading.Barrier(len(reads))

    def read(index: int, wanted: WantedRange) -> None:
        barrier.wait()
        answers[index] = [gathered.read(TABLE, BATTERY, wanted) for _ in range(3)]

    threads = [threading.Thread(target=read, args=(index, wanted)) for index, wanted in enumerate(reads)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(answers[index] == [want[wanted]] * 3 for index, wanted in enumerate(reads))
    queries, answered = (after - before for after, before in zip(_observed(), (before_count, before_sum)))
    assert answered == 3 * len(reads)  # every read answered by exactly one query
    assert queries < answered  # and some queries answered several


def test_a_failed_query_fails_every_read_it_answers(store: Store) -> None:
    gathered = GatheredReads(store)
    with pytest.raises(Exception, match="UNKNOWN_TABLE|does not exist"):
        gathered.read("storecast.no_such_table", BATTERY, WantedRange(1, 1, T0, T0 + 1000, 5))
    assert gathered.read(TABLE, BATTERY, WantedRange(1, 1, T0, T0 + 1000, 5)) == alone(store, WantedRange(1, 1, T0, T0 + 1000, 5))


def _observed() -> tuple[float, float]:
    """READS_PER_QUERY's count (queries) and sum (reads they answered)."""
    samples = {s.name: s.value for metric in READS_PER_QUERY.collect() for s in metric.samples}
    return samples["storecast_store_reads_per_query_count"], samples["storecast_store_reads_per_query_sum"]
