"""Both plans of an aggregated read give the engine's raw aggregation, on either side of the choice.

Hypothesis writes inserts of one genset (float and integer attributes, nulls,
records replaced within and across inserts), rolls the first of them up as the
maintainer does (their marks then gone) and leaves the rest pending, then asks
min, max, avg, sum and count over ranges from a few seconds to days, with
edges on and off minute and hour boundaries, periods of 1 min to 1 day. Every
answer is computed three ways: the raw plan (production_sql without a plan,
the engine's own aggregation of the newest records), the cells plan whatever
it costs (services/lib/reads/plan.cells_plan, after the pending lookup), and
the plan `choose` takes; min and max must be equal, sums and means within
1e-12 of the values' magnitude (they add the same numbers in another order).
chDB as `chdb://memory`: a process holds one engine path.
"""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest
from clickhouse_connect.driver.client import Client
from hypothesis import given, settings
from hypothesis import strategies as st

from services.lib.reads import plan
from services.lib.reads.pending import PendingSpans
from services.lib.reads.rollup import Span, new_token, pending_sql, resolution_for, touched_spans, upkeep_sql
from services.lib.reads.window import Window
from services.lib.store.schema import PENDING_TABLE, PRODUCTION_TABLES, ROLLUP_TABLES
from services.query.sql import cells_json, cells_json_sql, production_sql
from storecast.aggregations import AGGREGATIONS
from storecast.catalog import EQUIPMENT_TYPES, Kind

DATABASE = "unit_plans"
GENSET = EQUIPMENT_TYPES["genset"]
RAW, ROLLUP, PENDING = (f"{DATABASE}.{t.name}" for t in (PRODUCTION_TABLES["genset"], ROLLUP_TABLES["genset"], PENDING_TABLE))
MINUTE, HOUR, DAY = 60_000, 3_600_000, 86_400_000
EPOCH = 1_700_006_400_000  # midnight UTC
SPREAD = 2 * DAY
MAGNITUDE = 1000.0  # the values' bound: what a sum's rounding is relative to
PERIODS = (MINUTE, 15 * MINUTE, HOUR, DAY)
_sites = itertools.count(1)


@pytest.fixture(scope="module")
def store(engine: Client) -> Client:
    engine.command(f"CREATE DATABASE IF NOT EXISTS {DATABASE}")
    for table in (PRODUCTION_TABLES["genset"], ROLLUP_TABLES["genset"], PENDING_TABLE):
        for statement in table.ddl(DATABASE):
            engine.command(statement)
    return engine


def value(kind: Kind) -> st.SearchStrategy[Any]:
    if kind is Kind.UNSIGNED_INT:
        return st.one_of(st.none(), st.integers(0, 9))
    return st.one_of(st.none(), st.floats(-MAGNITUDE, MAGNITUDE, allow_nan=False).map(lambda x: round(x, 3)))


# Often on a few minutes' and hours' boundaries, so inserts replace records and edges cut cells.
timestamps = st.one_of(
    st.integers(0, 40).map(lambda m: EPOCH + m * MINUTE + 7_000),
    st.integers(0, 30).map(lambda h: EPOCH + h * HOUR),
    st.integers(0, SPREAD - 1).map(lambda t: EPOCH + t),
)
records = st.fixed_dictionaries({"timestamp": timestamps, **{a.name: value(a.kind) for a in GENSET.attributes}})
inserts = st.lists(st.lists(records, min_size=1, max_size=40), min_size=1, max_size=4)
edges = st.one_of(
    st.integers(0, SPREAD).map(lambda t: EPOCH + t),
    st.integers(0, 48).map(lambda h: EPOCH + h * HOUR),
    st.integers(0, 60).map(lambda m: EPOCH + m * MINUTE),
)
reads = st.lists(
    st.tuples(st.sampled_from(PERIODS), st.sampled_from(["min", "max", "avg", "sum", "count"]), edges, edges),
    min_size=1,
    max_size=6,
)


def insert(store: Client, site: int, batch: list[dict[str, Any]]) -> list[Span]:
    """One insert as the ingest makes it: the last of a key within it wins."""
    rows = {record["timestamp"]: record for record in batch}
    names = ["site_id", "id", "timestamp", *(a.name for a in GENSET.attributes)]
    data = [[site, 1, stamp, *(record[a.name] for a in GENSET.attributes)] for stamp, record in sorted(rows.items())]
    store.insert(RAW, data, column_names=names)
    return touched_spans([site] * len(rows), [1] * len(rows), sorted(rows))


def answer(store: Client, sql: str, parameters: dict[str, Any]) -> list[dict[str, Any]]:
    return [json.loads(line) for line in store.raw_query(sql, parameters, fmt="TabSeparatedRaw").decode().splitlines()]


def assert_same(got: list[dict[str, Any]], want: list[dict[str, Any]], exact: bool, context: Any) -> None:
    assert [r["timestamp"] for r in got] == [r["timestamp"] for r in want], context
    for got_record, want_record in zip(got, want, strict=True):
        for attribute in GENSET.attributes:
            expected, actual = want_record[attribute.name], got_record[attribute.name]
            if exact or expected is None:
                assert actual == expected, (context, attribute.name)
            else:
                assert actual == pytest.approx(expected, rel=1e-12, abs=1e-12 * MAGNITUDE), (context, attribute.name)


@settings(max_examples=25, deadline=None)  # about 0.35 s each: the unit tier stays fast
@given(sequence=inserts, applied=st.integers(0, 4), asked=reads)
def test_both_plans_and_the_chosen_one_equal_the_raw_aggregation(
    store: Client, sequence: list[list[dict[str, Any]]], applied: int, asked: list[Any]
) -> None:
    site = next(_sites)
    marks = PendingSpans()  # as the ingest's process holds them, beside the store's
    marks.load([])
    for index, batch in enumerate(sequence):
        token = new_token()
        marks.add(RAW, token, touched_spans([site] * len(batch), [1] * len(batch), [r["timestamp"] for r in batch]))
        spans = insert(store, site, batch)
        if index < applied:  # rolled up by a maintainer's round, its marks deleted
            for statement in upkeep_sql(RAW, ROLLUP, GENSET, spans):
                store.command(statement)
            marks.discard([token])
        else:  # marked, not yet recomputed
            store.command(pending_sql(PENDING, RAW, spans, token))
    for period, name, first, second in asked:
        start, end = min(first, second), max(first, second)
        if start == end:
            continue
        window = Window(start, end, AGGREGATIONS[name], period)
        resolution = resolution_for(window)
        assert resolution is not None
        parameters: dict[str, int | None] = {"site_id": site, "id": 1, "start": start, "end": end, "horizon": 0}
        raw = answer(store, production_sql(RAW, GENSET, window, 10_000), parameters)
        found = plan.first_pending(store, PENDING, RAW, parameters)
        assert marks.first_pending(RAW, site, 1, start, end) == found
        cells = plan.cells_plan(start, end, resolution, found)
        exact = name in ("min", "max", "count")
        from_cells = answer(store, production_sql(RAW, GENSET, window, 10_000, rollup=ROLLUP, plan=cells), parameters)
        assert_same(from_cells, raw, exact, (name, period, start - EPOCH, end - EPOCH, cells))
        # The series' newest stored timestamp, as services/lib/reads/newest.py knows it: a range ending
        # past it takes the cells its end falls in whole.
        newest = max(record["timestamp"] for batch in sequence for record in batch)
        whole = plan.cells_plan(start, end, resolution, found, newest)
        whole_sql = production_sql(RAW, GENSET, window, 10_000, rollup=ROLLUP, plan=whole)
        from_whole = answer(store, whole_sql, parameters)
        assert_same(from_whole, raw, exact, (name, period, start - EPOCH, end - EPOCH, whole))
        # The query service renders a cells plan's buckets in Python, in the engine's very bytes.
        rendered = store.raw_query(whole_sql, parameters, fmt="TabSeparatedRaw").splitlines()
        python = cells_json(store, cells_json_sql(RAW, ROLLUP, GENSET, window, whole, 10_000), parameters, GENSET, window, 1)
        assert python == b"[" + b",\n".join(rendered) + b"]", (name, period, start - EPOCH, end - EPOCH, whole)
        chosen = plan.choose(
            lambda: found,
            start,
            end,
            resolution=resolution,
            attributes=len(GENSET.attributes),
            past_records=False,
            newest=lambda: newest,
        )
        assert chosen in (None, cells, whole)
        from_chosen = answer(store, production_sql(RAW, GENSET, window, 10_000, rollup=ROLLUP, plan=chosen), parameters)
        assert_same(from_chosen, raw, exact, (name, period, start - EPOCH, end - EPOCH, chosen))


def test_the_choice_straddles_the_boundary() -> None:
    """Over a genset's 3 attributes, a range with partial minutes flips from the raw scan to
    the cells as it grows; whole minutes take the cells at any length."""
    attributes = len(GENSET.attributes)
    choices = [
        plan.cells_plan(EPOCH + 1, EPOCH + hours * HOUR - 1, MINUTE, None).cost_us(attributes)
        < plan.raw_cost_us(EPOCH + 1, EPOCH + hours * HOUR - 1, attributes)
        for hours in (1, 6, 12, 24, 48)
    ]
    assert choices[0] is False and choices[-1] is True and choices == sorted(choices)
    assert all(
        plan.cells_plan(EPOCH, EPOCH + m * MINUTE, MINUTE, None).cost_us(attributes)
        < plan.raw_cost_us(EPOCH, EPOCH + m * MINUTE, attributes)
        for m in (1, 60, 3000)
    )
