"""Aggregations served from rollups equal brute force over a model of the store.

Hypothesis writes PUT sequences for one battery (float and integer attributes,
nulls, replaced records, records arriving late into cells already rolled up),
reads either at once (pending spans: records from the first pending minute on)
or once the maintainer has recomputed the cells,
then asks aggregations whose periods fit a rollup resolution (1 min, 1 h, 1 d
and multiples) over ranges with unaligned edges, and some that fit none: every
aggregation of storecast/aggregations.py, v1's on /v1, the others on /ext/v1
(first and last never read cells). Every answer must equal the aggregation
over the model's records (floats within 1e-9 relative), with the contract's
null rules.

`make test` runs a few examples; `make soak` sets STORECAST_ROLLUP_EXAMPLES.
"""

from __future__ import annotations

import itertools
import os
import re
import shutil
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.lib.reads.rollup import ROUND_INTERVAL_S
from services.lib.store.schema import PRODUCTION_TABLES
from storecast.aggregations import AGGREGATIONS
from storecast.catalog import EQUIPMENT_TYPES, Kind
from tests.conftest import Pki, Storecast, free_port, ok, put, start_storecast, stop_storecast
from tests.helpers import JsonObject
from tests.test_aggregation import aggregate

EXAMPLES = int(os.environ.get("STORECAST_ROLLUP_EXAMPLES", "8"))
MINUTE, HOUR, DAY = 60_000, 3_600_000, 86_400_000
# Midnight UTC: cells of every resolution start here; the records spread over three days.
EPOCH = 1_700_006_400_000
SPREAD = 3 * DAY
BATTERY = EQUIPMENT_TYPES["battery"]
ATTRIBUTES = {a.name: a for a in BATTERY.attributes}
CHECKED = ("p", "soc", "state")
PERIODS = (MINUTE, 5 * MINUTE, HOUR, 2 * HOUR, DAY, 2 * DAY, 30_000)

_sites = itertools.count(3_500_000_000)


def value_of(name: str) -> st.SearchStrategy[Any]:
    if ATTRIBUTES[name].kind is Kind.UNSIGNED_INT:
        return st.one_of(st.none(), st.integers(0, 9))
    return st.one_of(st.none(), st.floats(-1000, 1000, allow_nan=False).map(lambda x: round(x, 3)))


# Timestamps on a few cells' worth of minutes, so that PUTs often replace and land in earlier cells.
timestamps = st.one_of(
    st.integers(0, 40).map(lambda m: EPOCH + m * MINUTE + 7_000),
    st.integers(0, SPREAD - 1).map(lambda t: EPOCH + t),
)
records = st.fixed_dictionaries({"timestamp": timestamps, **{name: value_of(name) for name in CHECKED}})
puts = st.lists(st.lists(records, min_size=1, max_size=30), min_size=1, max_size=5)
reads = st.lists(
    st.tuples(
        st.sampled_from(PERIODS),
        st.sampled_from(list(AGGREGATIONS)),
        st.integers(0, SPREAD - 1),
        st.integers(1, SPREAD),
    ),
    min_size=1,
    max_size=6,
)


def brute_force(model: dict[int, JsonObject], start: int, end: int, period: int, function: str) -> list[JsonObject]:
    buckets: dict[int, list[JsonObject]] = defaultdict(list)
    for timestamp, record in sorted(model.items()):
        if start <= timestamp < end:
            buckets[timestamp // period * period].append(record)
    results = []
    for bucket in sorted(buckets):
        result: JsonObject = {"timestamp": bucket, "id": 1}
        for name in CHECKED:
            result[name] = aggregate(function, [r[name] for r in buckets[bucket] if r.get(name) is not None])
        results.append(result)
    return results


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(sequence=puts, asked=reads, settle=st.booleans())
def test_rollup_reads_equal_brute_force(
    admin: httpx.Client, sequence: list[list[JsonObject]], asked: list[Any], settle: bool
) -> None:
    site = next(_sites)
    model: dict[int, JsonObject] = {}
    for batch in sequence:
        body = [{**record, "id": 1} for record in batch]
        ok(put(admin, f"/v1/{site}/production/battery", body), 201)
        for record in body:
            model[record["timestamp"]] = record  # the last of a key wins, within a PUT and across
    if settle:
        # The maintainer's round has recomputed the cells: reads take them.
        # Otherwise reads meet pending spans and take the records from there on.
        time.sleep(ROUND_INTERVAL_S + 1)
    for period, function, offset, length in asked:
        start = EPOCH + offset
        end = min(start + length, EPOCH + SPREAD + DAY)
        params = {"from": start, "to": end, "agg": function, "period": f"{period // 1000}s"}
        tree = "/v1" if AGGREGATIONS[function].v1 else "/ext/v1"
        got = ok(admin.get(f"{tree}/{site}/production/battery/1", params=params))["results"]
        want = brute_force(model, start, end, period, function)
        assert [r["timestamp"] for r in got] == [r["timestamp"] for r in want], params
        for got_record, want_record in zip(got, want, strict=True):
            for name in CHECKED:
                expected = want_record[name]
                if expected is None:
                    assert got_record[name] is None, (params, name)
                else:
                    assert got_record[name] == pytest.approx(expected, rel=1e-9, abs=1e-9), (params, name)


HOUR_1 = EPOCH + HOUR
# A read asked again goes to the store, which these tests watch, not to the answer kept of it (tests/test_kept_answers.py).
NO_KEPT_ANSWERS = {"STORECAST_ANSWER_CACHE_BYTES": "0"}
HOURLY: dict[str, str | int] = {"from": HOUR_1, "to": HOUR_1 + HOUR, "agg": "avg", "period": "1h"}


def hourly_p(instance: Storecast) -> list[float]:
    with instance.client("admin") as admin:
        return [r["p"] for r in ok(admin.get("/v1/1/production/battery/1", params=HOURLY))["results"]]


def put_p(instance: Storecast, records: list[JsonObject]) -> None:
    with instance.client("admin") as admin:
        ok(put(admin, "/v1/1/production/battery", records), 201)


def _pending_lookups(metrics_port: int) -> dict[str, float]:
    text = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10).text
    return {
        where: float(n) for where, n in re.findall(r'storecast_rollup_pending_lookups_total\{answered_from="(\w+)"\} (\S+)', text)
    }


def test_one_process_looks_its_own_marks_up_in_memory(tmp_path: Path, test_pki: Pki) -> None:
    """In `serve all` the ingest's process writes and deletes every mark, so an aggregation asks
    its memory, not the store, whether the cells of its range are pending: a PUT into an hour
    already rolled up counts at once, and once more from the recomputed cells."""
    metrics_port = free_port()
    instance = start_storecast(tmp_path, test_pki, {"STORECAST_METRICS_PORT": str(metrics_port), **NO_KEPT_ANSWERS})
    try:
        put_p(instance, [{"timestamp": HOUR_1 + i * MINUTE, "id": 1, "p": 1.0} for i in range(3)])
        time.sleep(ROUND_INTERVAL_S + 1)
        assert hourly_p(instance) == [1.0]  # from the cells
        put_p(instance, [{"timestamp": HOUR_1, "id": 1, "p": 4.0}])  # replaces a record of a rolled-up cell
        assert hourly_p(instance) == [2.0]  # pending: from the records
        time.sleep(ROUND_INTERVAL_S + 1)
        assert hourly_p(instance) == [2.0]  # from the recomputed cells
        assert _pending_lookups(metrics_port) == {"memory": 3.0, "store": 0.0}
        # PromQL's range functions over the cells look the marks up there too.
        end_s = (HOUR_1 + HOUR) // 1000
        form = {"query": 'avg_over_time(storecast_battery_p{id="1"}[1h])', "start": end_s, "end": end_s, "step": 3600}
        with instance.client("admin") as admin:
            response = admin.post("/ext/prom/api/v1/query_range", data=form)
        assert response.status_code == 200, response.text
        answer = response.json()
        # (HOUR_1, HOUR_1 + 1 h]: left-open, so without the replaced record at HOUR_1 itself.
        assert [float(value) for _, value in answer["data"]["result"][0]["values"]] == [1.0]
        lookups = _pending_lookups(metrics_port)
        assert lookups["memory"] > 3.0 and lookups["store"] == 0.0
    finally:
        stop_storecast(instance)


@pytest.fixture(scope="module")
def rolled_up(tmp_path_factory: pytest.TempPathFactory, test_pki: Pki) -> Path:
    """A stopped server's store whose cells of HOUR_1 say 1.0 (three records, rolled up): the
    starting point of the restart tests below, each of which restarts on a copy of its own."""
    directory = tmp_path_factory.mktemp("rolled-up")
    first = start_storecast(directory, test_pki)
    try:
        put_p(first, [{"timestamp": HOUR_1 + i * MINUTE, "id": 1, "p": 1.0} for i in range(3)])
        time.sleep(ROUND_INTERVAL_S + 1)  # the maintainer's round: the hour's cells say 1.0
        assert hourly_p(first) == [1.0]
    finally:
        stop_storecast(first)
    assert first.process.returncode == 0, first.log.read_text()
    return directory / "store"


def test_a_range_ending_past_its_newest_record_never_counts_one_written_past_its_end(tmp_path: Path, test_pki: Pki) -> None:
    """Such a range takes the cell its end falls in whole (services/lib/reads/newest.py): a record
    written later past the end, into that very cell, must send it back to the records."""
    instance = start_storecast(tmp_path, test_pki, NO_KEPT_ANSWERS)
    end = HOUR_1 + DAY + 30_000  # long enough for the cells to be the cheaper plan
    past_end = {"timestamp": end + 10_000, "p": 100.0}

    def average(record_id: int) -> list[float]:
        params: dict[str, str | int] = {"from": HOUR_1, "to": end, "agg": "avg", "period": "1h"}
        with instance.client("admin") as admin:
            return [r["p"] for r in ok(admin.get(f"/v1/1/production/battery/{record_id}", params=params))["results"]]

    try:
        for record_id in (1, 2):
            put_p(instance, [{"timestamp": HOUR_1 + i * MINUTE, "id": record_id, "p": float(i + 1)} for i in range(3)])
        put_p(instance, [{**past_end, "id": 2}])  # before the series is first read: the store tells
        time.sleep(ROUND_INTERVAL_S + 1)
        assert average(1) == [2.0] and average(2) == [2.0]
        put_p(instance, [{**past_end, "id": 1}])  # after: its insert tells
        assert average(1) == [2.0]  # pending
        time.sleep(ROUND_INTERVAL_S + 1)
        assert average(1) == [2.0] and average(2) == [2.0]  # the cells now hold it: the records answer
    finally:
        stop_storecast(instance)


def copy_store(store: Path, directory: Path) -> None:
    """A copy of the stopped server's `store` where start_storecast(directory) looks for it. The engine
    links metadata/<database> and data/<database>/<table> to store/…: relative links, kept as links,
    point into the copy (checked: a test must not write to the store another one starts from)."""
    copy = directory / "store"
    shutil.copytree(store, copy, symlinks=True)
    links = [path for path in copy.rglob("*") if path.is_symlink()]
    assert links and all(link.resolve().is_relative_to(copy) for link in links), links


def test_spans_whose_marks_a_power_loss_took_are_recomputed_at_start(tmp_path: Path, test_pki: Pki, rolled_up: Path) -> None:
    """Marks are not fsynced: a power loss can keep a PUT's records (synced) and lose its mark.
    Such a record is stored here behind the stopped server's back, with no mark; the next
    start marks the recent parts' spans pending again, so the hour's average counts it."""
    copy_store(rolled_up, tmp_path)
    table = f"storecast.{PRODUCTION_TABLES['battery'].name}"
    unmarked = f"INSERT INTO {table} (site_id, timestamp, id, p) VALUES (1, {HOUR_1 + 3 * MINUTE}, 1, 5.0)"
    script = f"import clickhouse_connect; clickhouse_connect.get_client(dsn='chdb://{tmp_path / 'store'}').command({unmarked!r})"
    subprocess.run([sys.executable, "-c", script], check=True, timeout=120)
    second = start_storecast(tmp_path, test_pki)
    try:
        assert hourly_p(second) == [2.0]
    finally:
        stop_storecast(second)


def _stopped_store_query(store: Path, sql: str) -> list[str]:
    """`sql`'s rows as tab-separated lines, read from a stopped server's store in a process of its own."""
    client = f"clickhouse_connect.get_client(dsn='chdb://{store}')"
    script = f"import clickhouse_connect; print({client}.raw_query({sql!r}, fmt='TabSeparated').decode())"
    out = subprocess.run([sys.executable, "-c", script], check=True, timeout=120, capture_output=True, text=True).stdout
    return out.split()


def _pending_tables(store: Path) -> list[str]:
    """The `tbl` of every pending row."""
    return sorted(_stopped_store_query(store, "SELECT tbl FROM storecast.rollup_pending"))


def test_records_stored_with_rollups_off_are_counted_once_they_are_back_on(
    tmp_path: Path, test_pki: Pki, rolled_up: Path
) -> None:
    copy_store(rolled_up, tmp_path)  # the hour's cells say 1.0
    off = start_storecast(tmp_path, test_pki, {"STORECAST_ROLLUPS": "0"})
    try:
        put_p(off, [{"timestamp": HOUR_1, "id": 1, "p": 7.0}])  # replaces a record, marks nothing
        assert hourly_p(off) == [3.0]  # from the records
    finally:
        stop_storecast(off)
    assert _pending_tables(tmp_path / "store") == ["*"]  # no cell can be trusted
    back_on = start_storecast(tmp_path, test_pki, NO_KEPT_ANSWERS)
    try:
        assert hourly_p(back_on) == [3.0]  # every span pending: from the records
        time.sleep(ROUND_INTERVAL_S + 1)
        assert hourly_p(back_on) == [3.0]  # from the recomputed cells
    finally:
        stop_storecast(back_on)
    assert "*" not in _pending_tables(tmp_path / "store")


def _pending_parts(store: Path) -> int:
    """The pending table's active parts, the deletes' patch parts aside."""
    parts = (
        "SELECT count() FROM system.parts WHERE database = 'storecast' AND table = 'rollup_pending'"
        " AND active AND NOT startsWith(name, 'patch-')"
    )
    return int(_stopped_store_query(store, parts)[0])


def test_a_round_leaves_the_marks_it_deleted_merged_into_one_part(tmp_path: Path, test_pki: Pki) -> None:
    """Each read that may take cells reads the marks first, and pays for every part and patch of
    theirs: a round that deleted some, with no insert meanwhile, merges what is left (here: four
    PUTs, four parts of marks)."""
    instance = start_storecast(tmp_path, test_pki, {"STORECAST_LOG": "0"})  # each PUT inserts its own marks
    try:
        for minute in range(4):
            put_p(instance, [{"timestamp": HOUR_1 + minute * MINUTE, "id": 1, "p": 1.0}])
        time.sleep(ROUND_INTERVAL_S + 1)
        assert hourly_p(instance) == [1.0]
    finally:
        stop_storecast(instance)
    assert _pending_tables(tmp_path / "store") == []
    assert _pending_parts(tmp_path / "store") == 1
