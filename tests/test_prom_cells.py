"""PromQL range functions over the rollup's cells (docs/api/prometheus.md, "From the rollup's cells"),
through the real gateway: every function, ranges and steps, against the windows (t - range, t] of the
records written, with records on the windows' edges, nulls and replaced records; a window past the first
pending minute; and which plan the engine took, from the services' metrics."""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import Pki, Storecast, ok, put, start_observed, stop_storecast
from tests.helpers import HOUR, MINUTE, T0

API = "/ext/prom/api/v1"
SITE = 41
IDS = (1, 2)
CADENCE_MS = 20_000
SPAN_MS = 6 * HOUR
# (range, its milliseconds, step in seconds): windows that cover their step, or leave gaps between them.
WINDOWS = [("1h", HOUR, 3600), ("30m", 30 * MINUTE, 3600), ("15m", 15 * MINUTE, 900), ("10m", 10 * MINUTE, 600)]

Records = dict[tuple[int, int], float | None]  # (id, timestamp) -> l1_p
REDUCE: dict[str, Callable[[list[float]], float]] = {
    "sum_over_time": lambda v: sum(v),
    "avg_over_time": lambda v: sum(v) / len(v),
    "min_over_time": lambda v: min(v),
    "max_over_time": lambda v: max(v),
    "count_over_time": lambda v: float(len(v)),
}


@pytest.fixture(scope="module")
def observed(tmp_path_factory: pytest.TempPathFactory, test_pki: Pki) -> Iterator[tuple[Storecast, int]]:
    instance, metrics_port = start_observed(tmp_path_factory.mktemp("prom-cells"), test_pki)
    yield instance, metrics_port
    stop_storecast(instance)


def metric(port: int, name: str, **labels: str) -> float:
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items())
    )


def write(client: httpx.Client, records: Records, site: int = SITE) -> None:
    values = [
        {"timestamp": stamp, "id": record_id, **({} if value is None else {"l1_p": value}), "f": 50.0}
        for (record_id, stamp), value in records.items()
    ]
    ok(put(client, f"/v1/{site}/production/meter-3p", values), 201)


@pytest.fixture(scope="module")
def written(observed: tuple[Storecast, int]) -> Records:
    """Six hours of two meters every 20 s (so a record on every window's edges), one l1_p in twenty null, then
    one record in ten replaced, those on the hours among them; read once the rollup's cells are recomputed."""
    storecast, port = observed
    rng = random.Random(7)
    records: Records = {
        (record_id, T0 + offset): None if rng.random() < 0.05 else round(rng.uniform(-500, 500), 3)
        for record_id in IDS
        for offset in range(0, SPAN_MS, CADENCE_MS)
    }
    replaced: Records = {key: round(rng.uniform(-500, 500), 3) for key in records if rng.random() < 0.1 or key[1] % HOUR == 0}
    with storecast.client() as client:
        write(client, records)
        write(client, replaced)
        # A PromQL query first stores every acknowledged record (and marks its cells pending); then the
        # maintainer recomputes them.
        stored_first(client)
    deadline = time.monotonic() + 60
    while metric(port, "storecast_rollup_spans_recomputed_total") < metric(port, "storecast_rollup_spans_marked_total"):
        assert time.monotonic() < deadline, "the rollup maintainer did not catch up"
        time.sleep(0.1)
    return records | replaced


def stored_first(client: httpx.Client) -> None:
    """A PromQL query: every acknowledged record is stored (and its cells marked pending) before it reads."""
    response = client.get(f"{API}/query", params={"query": "storecast_meter_3p_l1_p", "time": str(T0 // 1000)})
    assert response.status_code == 200, response.text


def expected(records: Records, function: str, start: int, end: int, step: int, window: int) -> dict[str, list[float]]:
    """Per id, the function at each step t over the non-null values of (t - window, t]; steps without one left out."""
    found: dict[str, list[float]] = {}
    for record_id in IDS:
        points = []
        for t in range(start, end + 1, step):
            values = [v for (i, stamp), v in records.items() if i == record_id and t - window < stamp <= t and v is not None]
            if not values:
                continue
            points.append((t / 1000, REDUCE[function](values)))
        found[str(record_id)] = [value for point in points for value in point]
    return found


def answered(client: httpx.Client, query: str, start: int, end: int, step_s: int) -> dict[str, list[float]]:
    params = {"query": query, "start": str(start // 1000), "end": str(end // 1000), "step": str(step_s)}
    response = client.get(f"{API}/query_range", params=params)
    assert response.status_code == 200, response.text
    return {
        series["metric"]["id"]: [float(x) for point in series["values"] for x in point]
        for series in response.json()["data"]["result"]
    }


def assert_close(got: dict[str, list[float]], want: dict[str, list[float]]) -> None:
    assert got.keys() == want.keys()
    for key in want:
        assert len(got[key]) == len(want[key]), key
        for a, b in zip(got[key], want[key]):
            assert math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9), (key, a, b)


@pytest.mark.parametrize("function", list(REDUCE))
@pytest.mark.parametrize(("range_text", "window", "step_s"), WINDOWS)
def test_windows_from_cells_equal_the_records(
    observed: tuple[Storecast, int], written: Records, function: str, range_text: str, window: int, step_s: int
) -> None:
    storecast, port = observed
    start, end = T0 + HOUR, T0 + SPAN_MS - HOUR
    # Sums, averages and counts from whole cells and the values at the windows' ends; minima and maxima
    # from minute cells inside and the records at the edges.
    plan = "whole_cells" if function in ("sum_over_time", "avg_over_time", "count_over_time") else "cells"
    before = metric(port, "storecast_prom_window_reads_total", plan=plan)
    with storecast.client() as client:
        got = answered(client, f'{function}(storecast_meter_3p_l1_p{{site_id="{SITE}"}}[{range_text}])', start, end, step_s)
    assert_close(got, expected(written, function, start, end, step_s * 1000, window))
    assert metric(port, "storecast_prom_window_reads_total", plan=plan) == before + 1


def test_a_sum_whole_cells_would_round_reads_the_minute_cells(observed: tuple[Storecast, int], written: Records) -> None:
    """A huge value on a window's left edge is in that window's hour cell but not in the window: taking it
    out of the cell's sum would not give back the digits it took, so the minute cells and records answer."""
    storecast, port = observed
    huge: Records = {(1, T0 + offset): (1e20 if offset == HOUR else 0.5) for offset in range(0, 3 * HOUR, CADENCE_MS)}
    query = f'sum_over_time(storecast_meter_3p_l1_p{{site_id="{SITE + 1}"}}[1h])'
    before = metric(port, "storecast_prom_window_reads_total", plan="cells")
    with storecast.client() as client:
        write(client, huge, SITE + 1)
        stored_first(client)
        deadline = time.monotonic() + 60
        while metric(port, "storecast_rollup_spans_recomputed_total") < metric(port, "storecast_rollup_spans_marked_total"):
            assert time.monotonic() < deadline, "the rollup maintainer did not catch up"
            time.sleep(0.1)
        got = answered(client, query, T0 + 2 * HOUR, T0 + 2 * HOUR, 3600)
    assert got == {"1": [(T0 + 2 * HOUR) / 1000, 0.5 * 180]}
    assert metric(port, "storecast_prom_window_reads_total", plan="cells") == before + 1


def test_short_windows_and_unaligned_steps_read_the_records(observed: tuple[Storecast, int], written: Records) -> None:
    storecast, port = observed
    records_before = metric(port, "storecast_prom_window_reads_total", plan="records")
    start, end = T0 + HOUR, T0 + 3 * HOUR
    with storecast.client() as client:
        five = answered(client, f'avg_over_time(storecast_meter_3p_l1_p{{site_id="{SITE}"}}[5m])', start, end, 300)
        odd_step = answered(client, f'max_over_time(storecast_meter_3p_l1_p{{site_id="{SITE}"}}[1h])', start, end, 3630)
    assert_close(five, expected(written, "avg_over_time", start, end, 300_000, 5 * MINUTE))
    assert_close(odd_step, expected(written, "max_over_time", start, end, 3_630_000, HOUR))
    assert metric(port, "storecast_prom_window_reads_total", plan="records") == records_before + 2


def test_a_window_past_the_first_pending_minute_reads_its_records(tmp_path: Path, test_pki: Pki) -> None:
    """Records written since the last maintainer round are in no cell yet: the windows from their minute on
    read records, and the answer counts them at once."""
    storecast, metrics_port = start_observed(tmp_path, test_pki)
    try:
        records: Records = {(1, T0 + offset): float(offset // CADENCE_MS % 7) for offset in range(0, 4 * HOUR, CADENCE_MS)}
        with storecast.client() as client:
            write(client, records)
            stored_first(client)
            deadline = time.monotonic() + 60
            while metric(metrics_port, "storecast_rollup_spans_recomputed_total") < 1:
                assert time.monotonic() < deadline, "the rollup maintainer's first round did not run"
                time.sleep(0.1)
            # Within the 2 s a maintainer waits after a round (rollup.ROUND_INTERVAL_S): the late span stays pending.
            late: Records = {(1, T0 + 2 * HOUR + 30 * MINUTE): 1000.0, (1, T0 + 3 * HOUR): -1000.0}
            write(client, late)
            query = f'sum_over_time(storecast_meter_3p_l1_p{{site_id="{SITE}"}}[1h])'
            got = answered(client, query, T0 + HOUR, T0 + 4 * HOUR, 3600)
        assert_close(got, {"1": expected(records | late, "sum_over_time", T0 + HOUR, T0 + 4 * HOUR, HOUR, HOUR)["1"]})
        assert metric(metrics_port, "storecast_prom_window_reads_total", plan="whole_cells") == 1
    finally:
        stop_storecast(storecast)
