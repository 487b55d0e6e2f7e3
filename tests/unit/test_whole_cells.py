"""PromQL windows (t - range, t] from whole rollup cells and the values at their two ends
(services/query/promql/select.py, WholeCells), on the engine's own cells: equal to the records' windows for
every function it takes, ranges and steps of each resolution; refused when a cell's firsts are unknown or a
sum would cancel past the bound."""

from __future__ import annotations

import math
import random
from collections.abc import Callable

import pyarrow as pa
import pytest
from clickhouse_connect.driver.client import Client
from hypothesis import given, settings
from hypothesis import strategies as st

from services.lib.reads.rollup import touched_spans, upkeep_sql
from services.lib.store.schema import PENDING_TABLE, PRODUCTION_TABLES, ROLLUP_TABLES
from services.query.promql.select import WHOLE_CELLS_FUNCTIONS, WholeCells, _covered_steps
from storecast.prom import METRICS
from tests.helpers import HOUR, MINUTE, T0

DATABASE = "unit_whole_cells"
METRIC = METRICS["storecast_meter_3p_l1_p"]
RAW, ROLLUP = f"{DATABASE}.production_meter_3p", f"{DATABASE}.rollup_meter_3p"
SPAN_MS = 8 * HOUR
Records = dict[tuple[int, int], float | None]  # (id, timestamp) -> l1_p
REDUCE: dict[str, Callable[[list[float]], float]] = {
    "sum_over_time": lambda values: sum(values),
    "avg_over_time": lambda values: sum(values) / len(values),
    "count_over_time": lambda values: float(len(values)),
}


def store(engine: Client, records: Records) -> None:
    rows = ", ".join(
        f"(1, {record_id}, {stamp}, {'NULL' if value is None else repr(value)}, 50.0)"
        for (record_id, stamp), value in records.items()
    )
    engine.command(f"INSERT INTO {RAW} (site_id, id, timestamp, l1_p, f) VALUES {rows}")
    spans = touched_spans([1] * len(records), [key[0] for key in records], [key[1] for key in records])
    for statement in upkeep_sql(RAW, ROLLUP, METRIC.equipment, spans):
        engine.command(statement)


@pytest.fixture(scope="module")
def written(engine: Client) -> Records:
    """Eight hours of two meters every 20 s, so a record on every window's edge, one l1_p in twenty null;
    then one record in ten replaced, the hours among them."""
    engine.command(f"CREATE DATABASE IF NOT EXISTS {DATABASE}")
    for table in (PRODUCTION_TABLES["meter-3p"], ROLLUP_TABLES["meter-3p"], PENDING_TABLE):
        for statement in table.ddl(DATABASE):
            engine.command(statement)
    rng = random.Random(11)
    records: Records = {
        (record_id, T0 + offset): None if rng.random() < 0.05 else round(rng.uniform(0, 500), 3)
        for record_id in (1, 2)
        for offset in range(0, SPAN_MS, 20_000)
    }
    store(engine, records)
    replaced: Records = {key: round(rng.uniform(0, 500), 3) for key in records if rng.random() < 0.1 or key[1] % HOUR == 0}
    store(engine, replaced)
    return records | replaced


def windows(
    engine: Client, function: str, first: int, step: int, steps: int, window: int, covered: tuple[int, int] | None = None
) -> pa.Table | None:
    resolution = max(r for r in (MINUTE, HOUR) if not (window % r or first % r or step % r))
    whole = WholeCells([METRIC], function, first, step, window, resolution)
    sql = whole.sql(ROLLUP, "site_id IN {sites:Array(UInt32)}", f"(SELECT minOrNull(first) FROM {DATABASE}.rollup_pending)")
    parameters = {"sites": [1], "lower": first - window, "upper": first + (steps - 1) * step} | whole.bounds
    cells = pa.ipc.open_stream(engine.raw_query(sql, parameters, fmt="ArrowStream")).read_all()
    return whole.windows(cells, covered or (0, steps - 1))


def expected(records: Records, function: str, first: int, step: int, steps: int, window: int) -> dict[tuple[int, int], float]:
    found: dict[tuple[int, int], float] = {}
    for record_id in (1, 2):
        found |= expected_for(records, record_id, function, first, step, steps, window)
    return found


def _window_values(records: Records, record_id: int, t: int, window: int) -> list[float]:
    return [v for (i, stamp), v in records.items() if i == record_id and t - window < stamp <= t and v is not None]


def expected_for(
    records: Records, record_id: int, function: str, first: int, step: int, steps: int, window: int
) -> dict[tuple[int, int], float]:
    """Per (id, step k) with a value in (t - window, t]: the function of the values, from the records."""
    found: dict[tuple[int, int], float] = {}
    for k in range(steps):
        values = _window_values(records, record_id, first + k * step, window)
        if values:
            found[(record_id, k)] = REDUCE[function](values)
    return found


def rounding_for(records: Records, record_id: int, function: str, first: int, step: int, k: int, window: int) -> float:
    """What any float summation of the window's values may be off by: (n + 2) unit roundoffs of the sum of
    their magnitudes (two for the value at the window's left edge a cell holds and takes out again, no
    larger than one of them, or whole cells refuse), twice over; per value for an average."""
    values = _window_values(records, record_id, first + k * step, window)
    if function == "count_over_time" or not values:
        return 0.0
    bound = 2 * (len(values) + 2) * 2**-53 * 2 * math.fsum(abs(v) for v in values)
    return bound / len(values) if function == "avg_over_time" else bound


@pytest.mark.parametrize("function", sorted(WHOLE_CELLS_FUNCTIONS))
@pytest.mark.parametrize(
    ("window", "step"), [(HOUR, HOUR), (HOUR, 2 * HOUR), (2 * HOUR, 2 * HOUR), (30 * MINUTE, HOUR), (10 * MINUTE, 10 * MINUTE)]
)
def test_whole_cells_equal_the_records(engine: Client, written: Records, function: str, window: int, step: int) -> None:
    first = T0 + 2 * HOUR
    steps = (T0 + SPAN_MS - first) // step
    got = windows(engine, function, first, step, steps, window)
    assert got is not None
    counted = got.column("count l1_p").to_pylist()
    answers = {
        (record_id, k): value
        for record_id, k, value, count in zip(
            got.column("id").to_pylist(), got.column("k").to_pylist(), got.column("value l1_p").to_pylist(), counted
        )
        if count
    }
    want = expected(written, function, first, step, steps, window)
    assert answers.keys() == want.keys()
    for key, value in want.items():
        got_value = answers[key]
        assert got_value is not None and math.isclose(got_value, value, rel_tol=1e-12), (key, got_value, value)


def test_a_sum_that_would_cancel_is_left_to_the_other_plans(engine: Client, written: Records) -> None:
    """A huge value on a window's left edge: out of the window, but in its cells' sum, where it takes the
    small ones' digits; taking it out again would not give them back."""
    first = T0 + 4 * HOUR
    store(engine, {(2, first - HOUR): 1e20})
    try:
        assert windows(engine, "sum_over_time", first, HOUR, 2, HOUR) is None
        assert windows(engine, "avg_over_time", first, HOUR, 2, HOUR) is None
        assert windows(engine, "count_over_time", first, HOUR, 2, HOUR) is not None  # counts do not round
    finally:
        store(engine, {(2, first - HOUR): written[(2, first - HOUR)]})


def test_cells_from_before_their_firsts_are_left_to_the_other_plans(engine: Client, written: Records) -> None:
    first = T0 + 5 * HOUR
    engine.command(
        f"INSERT INTO {ROLLUP} (site_id, id, resolution, bucket, records, mins, maxs, sums, counts)"
        f" VALUES (1, 1, {HOUR}, {first}, 1, [1], [1], [1], [1])"
    )
    try:
        assert windows(engine, "count_over_time", first - HOUR, HOUR, 2, HOUR) is None
        assert windows(engine, "count_over_time", first - 2 * HOUR, HOUR, 2, HOUR) is not None  # not that cell's step
    finally:
        store(engine, {(1, first): written[(1, first)]})


def test_covered_steps_without_a_cell_have_no_window(engine: Client, written: Records) -> None:
    """Cells before the covered steps only (those after a pending minute read records): no window from cells."""
    got = windows(engine, "avg_over_time", T0 + SPAN_MS, HOUR, 3, HOUR, covered=(2, 2))
    assert got is not None and got.num_rows == 0 and "value l1_p" in got.column_names


def test_steps_are_covered_before_the_first_pending_minute() -> None:
    first, step = 10 * HOUR, HOUR
    # Nothing pending: every step; the raw retention: only windows wholly after its horizon.
    assert _covered_steps(first, step, 5, HOUR, 0, None) == (0, 4)
    assert _covered_steps(first, step, 5, HOUR, 10 * HOUR + 1, None) == (2, 4)
    # A record pending at 12:00:30: the step at 12:00 takes the cells inside, not its value at t (reach).
    assert _covered_steps(first, step, 5, HOUR, 0, 12 * HOUR + 30_000) == (0, 2)
    assert _covered_steps(first, step, 5, HOUR, 0, 12 * HOUR + 30_000, reach=MINUTE) == (0, 1)
    assert _covered_steps(first, step, 5, HOUR, 0, first - 1, reach=MINUTE) is None


_NEXT_ID = iter(range(100, 10**6))


@settings(max_examples=60, deadline=None)
@given(
    data=st.dictionaries(
        st.integers(0, 4 * 180 - 1).map(lambda slot: T0 + slot * 20_000),
        st.none() | st.floats(-1e6, 1e6, allow_nan=False) | st.sampled_from([0.0, 1e15, -1e15]),
        min_size=1,
        max_size=120,
    ),
    function=st.sampled_from(sorted(WHOLE_CELLS_FUNCTIONS)),
    shape=st.sampled_from([(HOUR, HOUR), (30 * MINUTE, HOUR), (10 * MINUTE, 10 * MINUTE), (HOUR, 2 * HOUR)]),
)
def test_whole_cells_answer_as_the_records_or_not_at_all(
    engine: Client, written: Records, data: dict[int, float | None], function: str, shape: tuple[int, int]
) -> None:
    """Any records (nulls, huge values, records only on the edges): the windows whole cells give are the
    records' windows, or whole cells refuse them."""
    record_id = next(_NEXT_ID)
    records: Records = {(record_id, stamp): value for stamp, value in data.items()}
    store(engine, records)
    window, step = shape
    first, steps = T0 + HOUR, (3 * HOUR) // step + 1
    got = windows(engine, function, first, step, steps, window)
    if got is None:
        return
    mine = [i == record_id for i in got.column("id").to_pylist()]
    answers = {
        k: value
        for k, value, count, chosen in zip(
            got.column("k").to_pylist(), got.column("value l1_p").to_pylist(), got.column("count l1_p").to_pylist(), mine
        )
        if chosen and count
    }
    want = {k: value for (_, k), value in expected_for(records, record_id, function, first, step, steps, window).items()}
    assert answers.keys() == want.keys()
    for k, value in want.items():
        answer = answers[k]
        # Values of 1e15 and -1e15 in one window cancel: the small ones keep only the digits the sum left them.
        rounding = rounding_for(records, record_id, function, first, step, k, window)
        assert answer is not None and math.isclose(answer, value, rel_tol=1e-9, abs_tol=max(1e-6, rounding)), (k, answer, value)
