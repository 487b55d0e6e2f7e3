"""GetStaircase and GetHorizonErrors over gRPC equal brute force over a model of what was put.

Hypothesis writes a few PUT sequences of one solar forecast (vintages created
around the periods they give, some replaced by a later PUT, null values) and
of one meter (records replaced, null values), then asks staircases (horizon
0 and more, ranges or none, small max_records followed through next_from) and
horizon errors (periods and buckets of several lengths). Every answer must
equal what the model gives (floats within 1e-9 relative). Worked examples and
every refusal, with its API code, follow.

STORECAST_STAIRCASE_EXAMPLES sets the number of examples (20 by default).
"""

from __future__ import annotations

import itertools
import json
import os
from collections import defaultdict
from collections.abc import Iterator
from statistics import fmean
from typing import Any

import grpc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from storecast.catalog import TIMESTAMP_LIMIT_MS
from storecast.v1 import catalog_pb2, ingest_pb2, ingest_pb2_grpc, records_pb2, vector_pb2, vector_pb2_grpc
from tests.conftest import MAX_RECORDS
from tests.helpers import HOUR, MINUTE, T0, JsonObject, rpc_failure

EXAMPLES = int(os.environ.get("STORECAST_STAIRCASE_EXAMPLES", "20"))
STEP = 15 * MINUTE  # the forecasts' period length
GRID = 24  # period timestamps T0 + k * STEP, k < GRID
FORECAST_ID, METER_ID = 1, 3
Vintages = dict[int, dict[int, JsonObject]]  # creation_timestamp -> period timestamp -> period
Records = dict[int, float | None]  # timestamp -> meter p

_sites = itertools.count(3_700_000_000)


@pytest.fixture(scope="module")
def vector(grpc_channel: grpc.Channel) -> vector_pb2_grpc.VectorStub:
    return vector_pb2_grpc.VectorStub(grpc_channel)


@pytest.fixture(scope="module")
def ingest(grpc_channel: grpc.Channel) -> ingest_pb2_grpc.IngestStub:
    return ingest_pb2_grpc.IngestStub(grpc_channel)


# --- putting and asking -----------------------------------------------------


def put_vintages(vector: vector_pb2_grpc.VectorStub, site: int, vintages: Vintages) -> None:
    values = [{"creation_timestamp": c, "id": FORECAST_ID, "values": list(periods.values())} for c, periods in vintages.items()]
    request = vector_pb2.PutForecastRequest(
        site_id=site, forecast_type=catalog_pb2.SOLAR, v1_json=json.dumps({"values": values}).encode()
    )
    vector.PutForecast(request, timeout=30)


def put_records(ingest: ingest_pb2_grpc.IngestStub, site: int, records: Records) -> None:
    values = [{"timestamp": t, "id": METER_ID, "p": p} for t, p in records.items()]
    request = ingest_pb2.PutProductionRequest(
        site_id=site, equipment_type=catalog_pb2.METER, v1_json=json.dumps({"values": values}).encode()
    )
    ingest.PutProduction(request, timeout=30)


def interval(start: int | None, end: int | None) -> records_pb2.Interval | None:
    return None if start is None or end is None else records_pb2.Interval(start_ms=start, end_ms=end)


def staircase(
    vector: vector_pb2_grpc.VectorStub, site: int, horizon: int, start: int | None, end: int | None, max_records: int = 0
) -> records_pb2.Records:
    request = vector_pb2.GetStaircaseRequest(
        site_id=site,
        forecast_type=catalog_pb2.SOLAR,
        id=FORECAST_ID,
        range=interval(start, end),
        horizon_ms=horizon,
        max_records=max_records,
    )
    return vector.GetStaircase(request, timeout=30)


def staircase_pages(
    vector: vector_pb2_grpc.VectorStub, site: int, horizon: int, start: int | None, end: int | None, max_records: int
) -> Iterator[tuple[list[JsonObject], int | None]]:
    """Each answer's results and next_from, following next_from to the end."""
    while True:
        records = staircase(vector, site, horizon, start, end, max_records)
        results: list[JsonObject] = json.loads(records.results_json)
        assert records.count == len(results)
        next_from = records.next_from if records.HasField("next_from") else None
        yield results, next_from
        if next_from is None:
            return
        start, end = next_from, TIMESTAMP_LIMIT_MS - 1 if end is None else end


def horizon_errors(
    vector: vector_pb2_grpc.VectorStub,
    site: int,
    period: int,
    bucket: int,
    start: int | None = None,
    end: int | None = None,
    forecast_attribute: str = "",
) -> list[JsonObject]:
    request = vector_pb2.GetHorizonErrorsRequest(
        site_id=site,
        forecast_type=catalog_pb2.SOLAR,
        id=FORECAST_ID,
        range=interval(start, end),
        equipment_type=catalog_pb2.METER,
        equipment_id=METER_ID,
        attribute="p",
        period_ms=period,
        horizon_bucket_ms=bucket,
        forecast_attribute=forecast_attribute,
    )
    records = vector.GetHorizonErrors(request, timeout=30)
    results: list[JsonObject] = json.loads(records.results_json)
    assert records.count == len(results) and not records.HasField("next_from")
    return results


# --- brute force ------------------------------------------------------------


def brute_staircase(vintages: Vintages, horizon: int, start: int | None, end: int | None) -> list[JsonObject]:
    """For each period timestamp in range, the period of the latest vintage giving it created at or before t - horizon."""
    stamps = sorted({t for periods in vintages.values() for t in periods})
    results = []
    for t in stamps:
        if start is not None and end is not None and not start <= t < end:
            continue
        eligible = [c for c, periods in vintages.items() if t in periods and c <= t - horizon]
        if eligible:
            chosen = max(eligible)
            period = vintages[chosen][t]
            results.append({"timestamp": t, "creation_timestamp": chosen, "p": period["p"], "quality": period["quality"]})
    return results


def brute_horizon_errors(
    vintages: Vintages, records: Records, period: int, bucket: int, start: int | None, end: int | None
) -> list[JsonObject]:
    errors: dict[int, list[float]] = defaultdict(list)
    for c, periods in vintages.items():
        for t, values in periods.items():
            if values["p"] is None or (start is not None and end is not None and not start <= t < end):
                continue
            actuals = [p for s, p in records.items() if t <= s < t + period and p is not None]
            if actuals:
                errors[(t - c) // bucket * bucket].append(values["p"] - fmean(actuals))
    return [{"horizon_ms": h, "count": len(e), "mae": fmean(map(abs, e)), "bias": fmean(e)} for h, e in sorted(errors.items())]


def assert_same_staircase(got: list[JsonObject], want: list[JsonObject]) -> None:
    assert [(r["timestamp"], r["creation_timestamp"], r["quality"]) for r in got] == [
        (r["timestamp"], r["creation_timestamp"], r["quality"]) for r in want
    ]
    for got_record, want_record in zip(got, want, strict=True):
        assert list(got_record) == ["timestamp", "creation_timestamp", "p", "quality"]
        if want_record["p"] is None:
            assert got_record["p"] is None
        else:
            # Floats are JSON floats (5.0, not 5), as everywhere in the API.
            assert type(got_record["p"]) is float and got_record["p"] == want_record["p"]


def assert_same_errors(got: list[JsonObject], want: list[JsonObject]) -> None:
    assert [(r["horizon_ms"], r["count"]) for r in got] == [(r["horizon_ms"], r["count"]) for r in want]
    for got_record, want_record in zip(got, want, strict=True):
        for name in ("mae", "bias"):
            assert type(got_record[name]) is float
            assert got_record[name] == pytest.approx(want_record[name], rel=1e-9, abs=1e-9), name


# --- generated stores and questions -------------------------------------------


def value() -> st.SearchStrategy[float | None]:
    # Whole numbers included: they must still come back as floats.
    return st.one_of(st.none(), st.integers(-50, 50).map(float), st.floats(-1000, 1000).map(lambda x: round(x, 3)))


# A vintage: created on the grid or off it, its periods a subset of the grid (some before its creation).
vintage = st.tuples(
    st.integers(-4, GRID).map(lambda k: T0 + k * STEP) | st.integers(-HOUR, GRID * STEP).map(lambda ms: T0 + ms),
    st.dictionaries(
        st.integers(0, GRID - 1).map(lambda k: T0 + k * STEP),
        st.tuples(value(), st.one_of(st.none(), st.integers(0, 5))),
        min_size=1,
        max_size=GRID,
    ),
)
# Each PUT's vintages; a later PUT of a creation_timestamp replaces that vintage whole.
forecast_puts = st.lists(st.lists(vintage, min_size=1, max_size=5), min_size=1, max_size=3)
# Meter records on 5-minute steps, so periods of several lengths hold several; some replaced later.
record_puts = st.lists(
    st.dictionaries(st.integers(-2, GRID * 3 + 2).map(lambda k: T0 + k * 5 * MINUTE), value(), min_size=1, max_size=40),
    min_size=1,
    max_size=2,
)
ranges = st.one_of(st.none(), st.tuples(st.integers(-2, GRID + 1), st.integers(1, GRID + 2)).filter(lambda r: r[0] < r[1]))
stair_questions = st.lists(
    st.tuples(
        st.sampled_from([0, 1, STEP, HOUR, 3 * HOUR, 7 * MINUTE + 13]),
        ranges,
        st.sampled_from([0, 1, 2, 5]),
    ),
    min_size=1,
    max_size=4,
)
error_questions = st.lists(
    st.tuples(st.sampled_from([STEP, 2 * STEP, 7 * MINUTE]), st.sampled_from([1, STEP, HOUR, 90 * MINUTE]), ranges),
    min_size=1,
    max_size=3,
)


def bounds(grid_range: tuple[int, int] | None) -> tuple[int | None, int | None]:
    """A range of grid steps as timestamps, its edges off the grid so that they cut between periods."""
    if grid_range is None:
        return None, None
    return T0 + grid_range[0] * STEP - 1, T0 + grid_range[1] * STEP - 1


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(sequence=forecast_puts, meter=record_puts, asked_stairs=stair_questions, asked_errors=error_questions)
def test_staircase_and_horizon_errors_equal_brute_force(
    vector: vector_pb2_grpc.VectorStub,
    ingest: ingest_pb2_grpc.IngestStub,
    sequence: list[list[tuple[int, dict[int, tuple[float | None, int | None]]]]],
    meter: list[Records],
    asked_stairs: list[tuple[int, tuple[int, int] | None, int]],
    asked_errors: list[tuple[int, int, tuple[int, int] | None]],
) -> None:
    site = next(_sites)
    model: Vintages = {}
    for put in sequence:
        sent: Vintages = {}
        for creation, periods in put:
            sent[creation] = {t: {"timestamp": t, "p": p, "quality": q} for t, (p, q) in periods.items()}
        put_vintages(vector, site, sent)
        model.update(sent)  # a vintage put again is replaced whole, not merged
    records: Records = {}
    for sent_records in meter:
        put_records(ingest, site, sent_records)
        records.update(sent_records)
    for horizon, grid_range, max_records in asked_stairs:
        start, end = bounds(grid_range)
        want = brute_staircase(model, horizon, start, end)
        got: list[JsonObject] = []
        for results, next_from in staircase_pages(vector, site, horizon, start, end, max_records):
            if next_from is not None:
                # A partial answer holds max_records periods and names the next one's timestamp.
                assert len(results) == max_records
                assert next_from == want[len(got) + len(results)]["timestamp"]
            got += results
        assert_same_staircase(got, want)
    for period, bucket, grid_range in asked_errors:
        start, end = bounds(grid_range)
        got = horizon_errors(vector, site, period, bucket, start, end)
        assert_same_errors(got, brute_horizon_errors(model, records, period, bucket, start, end))


# --- worked examples ----------------------------------------------------------


def vintage_of(values: dict[int, float | None]) -> dict[int, JsonObject]:
    """A vintage's periods, quality 1."""
    return {t: {"timestamp": t, "p": p, "quality": 1} for t, p in values.items()}


def test_a_staircase_takes_each_period_from_the_latest_vintage_old_enough(vector: vector_pb2_grpc.VectorStub, site: int) -> None:
    # Vintages at 00:00 and 06:00 (T0-relative) giving hourly periods 06:00..09:00.
    first = vintage_of({T0 + 6 * HOUR: 1.0, T0 + 7 * HOUR: 2.0, T0 + 8 * HOUR: 3.0, T0 + 9 * HOUR: 4.0})
    second = vintage_of({T0 + 6 * HOUR: 10.0, T0 + 7 * HOUR: None, T0 + 8 * HOUR: 30.0, T0 + 9 * HOUR: 40.0})
    put_vintages(vector, site, {T0: first, T0 + 6 * HOUR: second})

    def got(horizon: int) -> list[tuple[int, int, Any]]:
        results = json.loads(staircase(vector, site, horizon, None, None).results_json)
        return [(r["timestamp"] - T0, r["creation_timestamp"] - T0, r["p"]) for r in results]

    # Horizon 0: the 06:00 vintage gives every period, its null included.
    assert got(0) == [
        (6 * HOUR, 6 * HOUR, 10.0),
        (7 * HOUR, 6 * HOUR, None),
        (8 * HOUR, 6 * HOUR, 30.0),
        (9 * HOUR, 6 * HOUR, 40.0),
    ]
    # Horizon 2 h: 06:00 and 07:00 are too close to the 06:00 vintage, so the 00:00 one gives them.
    assert got(2 * HOUR) == [(6 * HOUR, 0, 1.0), (7 * HOUR, 0, 2.0), (8 * HOUR, 6 * HOUR, 30.0), (9 * HOUR, 6 * HOUR, 40.0)]
    # Horizon 7 h: only the 00:00 vintage is old enough, and only for 07:00 on.
    assert got(7 * HOUR) == [(7 * HOUR, 0, 2.0), (8 * HOUR, 0, 3.0), (9 * HOUR, 0, 4.0)]
    assert got(10 * HOUR) == []


def test_a_partial_staircase_names_the_next_timestamp(vector: vector_pb2_grpc.VectorStub, site: int) -> None:
    stamps = [T0 + k * STEP for k in range(5)]
    put_vintages(vector, site, {T0 - HOUR: vintage_of({t: float(k) for k, t in enumerate(stamps)})})
    first = staircase(vector, site, 0, T0, T0 + 2 * HOUR, max_records=2)
    assert first.count == 2 and first.next_from == stamps[2]
    assert [r["timestamp"] for r in json.loads(first.results_json)] == stamps[:2]
    last = staircase(vector, site, 0, stamps[4], T0 + 2 * HOUR, max_records=2)
    assert last.count == 1 and not last.HasField("next_from")
    # max_records 0 is the server's cap, which the request cannot exceed either.
    assert staircase(vector, site, 0, None, None, max_records=0).count == 5
    assert staircase(vector, site, 0, None, None, max_records=MAX_RECORDS + 5).count == 5


def test_horizon_errors_average_the_actuals_over_each_period(
    vector: vector_pb2_grpc.VectorStub, ingest: ingest_pb2_grpc.IngestStub, site: int
) -> None:
    # Actuals over [06:00, 07:00[: mean(10, 20) = 15 (the null is skipped); over [07:00, 08:00[: none.
    put_records(ingest, site, {T0 + 6 * HOUR: 10.0, T0 + 6 * HOUR + 30 * MINUTE: 20.0, T0 + 6 * HOUR + 45 * MINUTE: None})
    put_records(ingest, site, {T0 + 7 * HOUR: None})
    put_vintages(
        vector,
        site,
        {
            T0: vintage_of({T0 + 6 * HOUR: 18.0, T0 + 7 * HOUR: 5.0}),
            T0 + 5 * HOUR: vintage_of({T0 + 6 * HOUR: 14.0}),
            T0 + 6 * HOUR + 30 * MINUTE: vintage_of({T0 + 6 * HOUR: 11.0}),
        },
    )
    got = horizon_errors(vector, site, HOUR, HOUR, forecast_attribute="p")
    # Horizons 6 h (error +3), 1 h (-1) and -30 min (-4, in the bucket [-1 h, 0[).
    assert got == [
        {"horizon_ms": -HOUR, "count": 1, "mae": 4.0, "bias": -4.0},
        {"horizon_ms": HOUR, "count": 1, "mae": 1.0, "bias": -1.0},
        {"horizon_ms": 6 * HOUR, "count": 1, "mae": 3.0, "bias": 3.0},
    ]
    assert horizon_errors(vector, site, HOUR, 12 * HOUR) == [
        {"horizon_ms": -12 * HOUR, "count": 1, "mae": 4.0, "bias": -4.0},
        {"horizon_ms": 0, "count": 2, "mae": 2.0, "bias": 1.0},
    ]
    # A range keeps the periods in it; none there is an empty answer, not an error.
    assert horizon_errors(vector, site, HOUR, HOUR, T0 + 7 * HOUR, T0 + 8 * HOUR) == []


def test_an_error_too_large_for_a_float_is_null(
    vector: vector_pb2_grpc.VectorStub, ingest: ingest_pb2_grpc.IngestStub, site: int
) -> None:
    put_records(ingest, site, {T0: -1.5e308})
    put_vintages(vector, site, {T0 - HOUR: vintage_of({T0: 1.5e308})})
    assert horizon_errors(vector, site, HOUR, HOUR) == [{"horizon_ms": HOUR, "count": 1, "mae": None, "bias": None}]


# --- refusals -------------------------------------------------------------------


def stair_request(**fields: Any) -> vector_pb2.GetStaircaseRequest:
    return vector_pb2.GetStaircaseRequest(**{"site_id": 1, "forecast_type": catalog_pb2.SOLAR, "id": 1, **fields})


def errors_request(**fields: Any) -> vector_pb2.GetHorizonErrorsRequest:
    defaults = {
        "site_id": 1,
        "forecast_type": catalog_pb2.SOLAR,
        "id": 1,
        "equipment_type": catalog_pb2.METER,
        "equipment_id": 3,
        "attribute": "p",
        "period_ms": HOUR,
        "horizon_bucket_ms": HOUR,
    }
    return vector_pb2.GetHorizonErrorsRequest(**{**defaults, **fields})


STAIR_REFUSALS: list[tuple[vector_pb2.GetStaircaseRequest, int, str]] = [
    (stair_request(forecast_type=catalog_pb2.FORECAST_TYPE_UNSPECIFIED), 1106, "unknown forecast type 0"),
    (stair_request(forecast_type=99), 1106, "unknown forecast type 99"),
    (stair_request(horizon_ms=-1), 1206, "horizon must be 0 or more"),
    (stair_request(range=records_pb2.Interval(start_ms=-1, end_ms=5)), 1201, "from must be"),
    (stair_request(range=records_pb2.Interval(start_ms=1, end_ms=TIMESTAMP_LIMIT_MS)), 1202, "to must be"),
    (stair_request(range=records_pb2.Interval(start_ms=5, end_ms=5)), 1200, "from must be lower than to"),
]
ERROR_REFUSALS: list[tuple[vector_pb2.GetHorizonErrorsRequest, int, str]] = [
    (errors_request(forecast_type=42), 1106, "unknown forecast type 42"),
    (errors_request(equipment_type=catalog_pb2.EQUIPMENT_TYPE_UNSPECIFIED), 1106, "unknown equipment type 0"),
    (errors_request(attribute=""), 1200, "attribute must be a float attribute of meter records (p, q, f, u, i), got none"),
    (errors_request(attribute="zz"), 1200, "got 'zz'"),
    (errors_request(equipment_type=catalog_pb2.STATUS, attribute="value"), 1200, "float attribute of status records"),
    (errors_request(forecast_attribute="quality"), 1200, "forecast_attribute must be a float attribute of solar forecasts (p)"),
    (errors_request(period_ms=0), 1206, "period must be positive"),
    (errors_request(period_ms=-HOUR), 1206, "period must be positive"),
    (errors_request(period_ms=TIMESTAMP_LIMIT_MS + 1), 1206, "at most"),
    (errors_request(horizon_bucket_ms=0), 1206, "horizon_bucket must be positive"),
    (errors_request(range=records_pb2.Interval(start_ms=9, end_ms=5)), 1200, "from must be lower than to"),
]


@pytest.mark.parametrize(("request_", "code", "fragment"), STAIR_REFUSALS)
def test_staircase_refusals(
    vector: vector_pb2_grpc.VectorStub, request_: vector_pb2.GetStaircaseRequest, code: int, fragment: str
) -> None:
    status, failure = rpc_failure(lambda: vector.GetStaircase(request_, timeout=30))
    assert status == grpc.StatusCode.INVALID_ARGUMENT
    assert failure.code == code and fragment in failure.message, failure.message


@pytest.mark.parametrize(("request_", "code", "fragment"), ERROR_REFUSALS)
def test_horizon_error_refusals(
    vector: vector_pb2_grpc.VectorStub, request_: vector_pb2.GetHorizonErrorsRequest, code: int, fragment: str
) -> None:
    status, failure = rpc_failure(lambda: vector.GetHorizonErrors(request_, timeout=30))
    assert status == grpc.StatusCode.INVALID_ARGUMENT
    assert failure.code == code and fragment in failure.message, failure.message


def test_ids_never_stored_are_1107(vector: vector_pb2_grpc.VectorStub, ingest: ingest_pb2_grpc.IngestStub, site: int) -> None:
    def refused(call: Any) -> str:
        status, failure = rpc_failure(call)
        assert status == grpc.StatusCode.NOT_FOUND and failure.code == 1107
        return failure.message

    assert "solar forecast of id 1" in refused(lambda: vector.GetStaircase(stair_request(site_id=site), timeout=30))
    assert "solar forecast of id 1" in refused(lambda: vector.GetHorizonErrors(errors_request(site_id=site), timeout=30))
    put_vintages(vector, site, {T0: vintage_of({T0 + HOUR: 1.0})})
    # Stored, but nothing old enough: an empty staircase.
    assert staircase(vector, site, 2 * HOUR, None, None).results_json == b"[]"
    assert "meter record of id 3" in refused(lambda: vector.GetHorizonErrors(errors_request(site_id=site), timeout=30))
    put_records(ingest, site, {T0: 1.0})
    # Both stored, no period with an actual: no bucket.
    assert horizon_errors(vector, site, HOUR, HOUR) == []


def test_more_horizon_buckets_than_the_cap_is_1206(
    vector: vector_pb2_grpc.VectorStub, ingest: ingest_pb2_grpc.IngestStub, site: int
) -> None:
    stamps = [T0 + k * 1000 for k in range(MAX_RECORDS + 1)]
    put_vintages(vector, site, {T0: vintage_of(dict.fromkeys(stamps, 1.0))})
    put_records(ingest, site, dict.fromkeys(stamps, 2.0))
    assert len(horizon_errors(vector, site, 1000, 2000)) == (MAX_RECORDS + 2) // 2
    status, failure = rpc_failure(
        lambda: vector.GetHorizonErrors(errors_request(site_id=site, period_ms=1000, horizon_bucket_ms=1000), timeout=30)
    )
    assert failure.code == 1206 and f"more than {MAX_RECORDS} horizon buckets" in failure.message
