"""Aggregations served from rollups equal brute force over a model of the store.

Hypothesis writes PUT sequences for one battery (float and integer attributes,
nulls, replaced records, records arriving late into cells already rolled up),
reads either at once (pending spans: records from the first pending minute on)
or once the maintainer has recomputed the cells,
then asks aggregations whose periods fit a rollup resolution (1 min, 1 h, 1 d
and multiples) over ranges with unaligned edges, and some that fit none. Every
answer must equal min, max or mean over the model's records (floats within
1e-9 relative), with the contract's null rules.

`make test` runs a few examples; `make soak` sets STORECAST_ROLLUP_EXAMPLES.
"""

from __future__ import annotations

import itertools
import os
import time
from collections import defaultdict
from statistics import fmean
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from storecast.catalog import EQUIPMENT_TYPES, Kind
from tests.conftest import ok, put
from tests.helpers import JsonObject

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
        st.sampled_from(("min", "max", "avg")),
        st.integers(0, SPREAD - 1),
        st.integers(1, SPREAD),
    ),
    min_size=1,
    max_size=6,
)


def brute_force(model: dict[int, JsonObject], start: int, end: int, period: int, function: str) -> list[JsonObject]:
    buckets: dict[int, list[JsonObject]] = defaultdict(list)
    for timestamp, record in model.items():
        if start <= timestamp < end:
            buckets[timestamp // period * period].append(record)
    results = []
    for bucket in sorted(buckets):
        result: JsonObject = {"timestamp": bucket, "id": 1}
        for name in CHECKED:
            values = [r[name] for r in buckets[bucket] if r.get(name) is not None]
            if not values:
                result[name] = None
            elif function == "avg":
                result[name] = fmean(values)
            else:
                result[name] = min(values) if function == "min" else max(values)
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
        # The maintainer's round (every 0.5 s) has recomputed the cells: reads take them.
        # Otherwise reads meet pending spans and take the records from there on.
        time.sleep(1.5)
    for period, function, offset, length in asked:
        start = EPOCH + offset
        end = min(start + length, EPOCH + SPREAD + DAY)
        params = {"from": start, "to": end, "agg": function, "period": f"{period // 1000}s"}
        got = ok(admin.get(f"/v1/{site}/production/battery/1", params=params))["results"]
        want = brute_force(model, start, end, period, function)
        assert [r["timestamp"] for r in got] == [r["timestamp"] for r in want], params
        for got_record, want_record in zip(got, want, strict=True):
            for name in CHECKED:
                expected = want_record[name]
                if expected is None:
                    assert got_record[name] is None, (params, name)
                else:
                    assert got_record[name] == pytest.approx(expected, rel=1e-9, abs=1e-9), (params, name)
