"""storecast.client against a real `storecast serve all`, over REST (client certificates) and gRPC (typed batches)."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import numpy as np
import pandas as pd
import pytest

from storecast.aggregations import AGGREGATIONS, AggregationName
from storecast.client import ApiError, Client, RowError, to_datetime_index
from tests.conftest import MAX_BODY_BYTES, MAX_RECORDS, Storecast
from tests.helpers import HOUR, MINUTE, T0

TRANSPORTS = ("rest", "grpc")


def connect(storecast: Storecast, transport: str, name: str = "admin") -> Client:
    if transport == "grpc":
        return Client.grpc(storecast.grpc_target, timeout=60)
    cert, key = storecast.pki.cert(name)
    return Client.rest(storecast.base_url, cert=cert, key=key, ca=storecast.pki.ca, timeout=60)


@pytest.fixture(params=TRANSPORTS)
def client(request: pytest.FixtureRequest, storecast: Storecast) -> Iterator[Client]:
    with connect(storecast, request.param) as connected:
        yield connected


def is_rest(client: Client) -> bool:
    return type(client.transport).__name__ == "RestTransport"


def test_production_round_trip_with_nulls_and_several_ids(client: Client, site: int) -> None:
    stamps = T0 + np.arange(6) * 1000
    frame = pd.DataFrame(
        {"id": [1, 2, 1, 2, 1, 2], "p": [1.5, 2.5, np.nan, 4.0, 5.25, -6.0], "q": [0.1, np.nan, np.nan, 0.4, 0.5, 0.6]},
        index=pd.Index(stamps, name="timestamp"),
    )
    assert client.put_production(site, "renewable", frame) == 6

    one = client.get_production(site, "renewable", 1)
    assert list(one.columns) == ["p", "q"] and one.index.name == "timestamp"
    assert one.index.dtype == np.int64 and (one.dtypes == np.float64).all()
    assert one.index.tolist() == stamps[[0, 2, 4]].tolist()
    assert one["p"].tolist()[0::2] == [1.5, 5.25] and np.isnan(one["p"].iloc[1])
    assert one["q"].iloc[0] == 0.1 and one["q"].isna().tolist() == [False, True, False]

    both = client.get_production(site, "renewable", [1, 2])
    assert list(both.columns) == ["id", "p", "q"] and len(both) == 6
    pd.testing.assert_frame_equal(
        both.reset_index().sort_values(["timestamp", "id"]).reset_index(drop=True),
        frame.reset_index()[["timestamp", "id", "p", "q"]].sort_values(["timestamp", "id"]).reset_index(drop=True),
        check_dtype=False,
    )


def test_unsigned_attributes_are_nullable_uint32(client: Client, site: int) -> None:
    frame = pd.DataFrame(
        {"soc": [50.0, np.nan, 52.5], "state": pd.array([4, None, 7], dtype="UInt32")},
        index=pd.Index([T0, T0 + 1000, T0 + 2000], name="timestamp"),
    )
    client.put_production(site, "battery", frame, id=3)
    out = client.get_production(site, "battery", 3)
    assert str(out["state"].dtype) == "UInt32"
    assert out["state"].tolist() == [4, pd.NA, 7]
    assert out.shape == (3, 9) and out["e"].isna().all()
    # An average makes floats of unsigned attributes (docs/api/v1.md §7).
    averaged = client.get_production(site, "battery", 3, start=T0, end=T0 + MINUTE, agg="avg", period="1m")
    assert averaged["state"].dtype == np.float64 and averaged["state"].tolist() == [5.5]
    assert averaged["soc"].tolist() == [51.25]


def test_every_aggregation_of_the_table_with_its_kinds(client: Client, site: int) -> None:
    # v1's over /v1 (REST) and the others under /ext/v1; gRPC asks the services for any.
    frame = pd.DataFrame(
        {"soc": [50.0, np.nan, 52.5, 40.0], "state": pd.array([4, 6, None, 7], dtype="UInt32")},
        index=pd.Index([T0 + 3000, T0 + 1000, T0 + 2000, T0 + MINUTE], name="timestamp"),
    )
    client.put_production(site, "battery", frame, id=3)
    # Per minute bucket: soc over [T0, T0 + 1 min[ is 52.5 (at +2 s) and 50.0 (+3 s); state 6 (+1 s) and 4 (+3 s).
    expected: dict[AggregationName, tuple[list[float], list[float]]] = {
        "min": ([50.0, 40.0], [4, 7]),
        "max": ([52.5, 40.0], [6, 7]),
        "avg": ([51.25, 40.0], [5.0, 7.0]),
        "sum": ([102.5, 40.0], [10, 7]),
        "count": ([2, 1], [2, 1]),
        "first": ([52.5, 40.0], [6, 7]),
        "last": ([50.0, 40.0], [4, 7]),
    }
    assert list(expected) == list(AGGREGATIONS)
    for name, (soc, state) in expected.items():
        out = client.get_production(site, "battery", 3, start=T0, end=T0 + 2 * MINUTE, agg=name, period="1m")
        assert out.index.tolist() == [T0, T0 + MINUTE], name
        assert out["soc"].tolist() == soc and out["state"].tolist() == state, name
        # A count is an unsigned int, an average a float; the others keep the attribute's kind.
        assert str(out["soc"].dtype) == ("UInt32" if name == "count" else "float64"), name
        assert str(out["state"].dtype) == ("float64" if name == "avg" else "UInt32"), name
        # e was never given: counted 0, else null.
        assert out["e"].tolist() == [0, 0] if name == "count" else out["e"].isna().all(), name
    with pytest.raises(ValueError, match="agg must be"):
        client.get_production(site, "battery", 3, start=T0, end=T0 + MINUTE, agg="median", period="1m")  # type: ignore[arg-type]


def test_options_a_read_does_not_take_are_refused(client: Client, site: int) -> None:
    with pytest.raises(TypeError, match="stat"):
        client.get_production(site, "battery", 3, stat=T0)  # type: ignore[call-arg]
    # The parameters' rows say which category takes which: gRPC refuses before sending, REST as the API does.
    refused = (
        pytest.raises(ApiError, match="'generated-after' is not a parameter of production")
        if is_rest(client)
        else pytest.raises(ValueError, match="a production read takes no generated_after")
    )
    with refused:
        client.get_production(site, "battery", 3, generated_after=T0, generated_before=T0 + 1)


def test_numpy_arrays_in_and_a_datetime_index_out(client: Client, site: int) -> None:
    stamps = T0 + np.arange(4, dtype=np.int64) * 15 * MINUTE
    client.put(
        site, "production/thermometer", {"timestamp": stamps, "id": np.full(4, 9), "t": np.array([20.0, 21.0, 22.0, 23.0])}
    )
    table = client.read(site, "production/thermometer", 9)
    assert table.columns["timestamp"].tolist() == stamps.tolist() and table.columns["t"].tolist() == [20.0, 21.0, 22.0, 23.0]
    frame = client.get_production(site, "thermometer", 9, start=pd.Timestamp(T0, unit="ms"), end=T0 + HOUR, datetime_index=True)
    assert isinstance(frame.index, pd.DatetimeIndex) and str(frame.index.tz) == "UTC"
    assert frame.index[0] == pd.Timestamp("2018-08-24 10:00", tz="UTC")
    hourly = client.get_production(site, "thermometer", 9, start=T0, end=T0 + HOUR, agg="max", period="30m")
    assert hourly["t"].tolist() == [21.0, 23.0] and hourly.index.tolist() == [T0, T0 + 30 * MINUTE]
    assert to_datetime_index(hourly).index[1] == pd.Timestamp("2018-08-24 10:30", tz="UTC")


def test_forecast_vintages(client: Client, site: int) -> None:
    periods = T0 + np.arange(4) * 30 * MINUTE
    vintages = [T0 - 3 * HOUR, T0 - 2 * HOUR, T0 - HOUR]
    index = pd.MultiIndex.from_product([vintages, periods], names=["creation_timestamp", "timestamp"])
    frame = pd.DataFrame({"p": np.arange(12, dtype=float), "quality": pd.array([1, 2, None, 3] * 3, dtype="UInt32")}, index=index)
    client.put_forecast(site, "solar", frame, id=4)

    latest = client.get_forecast(site, "solar", 4)
    assert latest.index.names == ["creation_timestamp", "timestamp"] and list(latest.columns) == ["p", "quality"]
    assert latest.index.get_level_values(0).unique().tolist() == [T0 - HOUR]
    assert latest["p"].tolist() == [8.0, 9.0, 10.0, 11.0] and latest["quality"].tolist() == [1, 2, pd.NA, 3]

    every = client.get_forecast(site, "solar", 4, generated_after=0, generated_before=T0, generate_all=True)
    pd.testing.assert_frame_equal(every, frame, check_index_type=False)
    as_of = client.get_forecast(site, "solar", 4, as_of=T0 - 2 * HOUR, start=periods[1], end=periods[3])
    assert as_of.index.tolist() == [(T0 - 2 * HOUR, periods[1]), (T0 - 2 * HOUR, periods[2])]
    assert client.vintages(site, "forecast/solar", 4) == vintages

    # A vector put again is replaced whole: a shorter one leaves no period of the old one.
    client.put_forecast(site, "solar", frame.loc[[T0 - HOUR]].iloc[:2].assign(p=[-1.0, -2.0]), id=4)
    assert client.get_forecast(site, "solar", 4)["p"].tolist() == [-1.0, -2.0]


def test_commitment_quality_repeats_on_each_period(client: Client, site: int) -> None:
    frame = pd.DataFrame(
        {
            "creation_timestamp": [T0, T0, T0, T0 + 1, T0 + 1],
            "timestamp": [T0, T0 + HOUR, T0 + 2 * HOUR, T0, T0 + HOUR],
            "id": [2, 2, 2, 2, 2],
            "quality": [3, 3, 3, None, None],
            "value": [1100.0, 950.4, np.nan, 1.0, 2.0],
        }
    )
    client.put_commitment(site, frame)
    every = client.get_commitment(site, 2, generated_after=0, generated_before=T0 + 2, generate_all=True)
    assert every.index.names == ["creation_timestamp", "timestamp"] and list(every.columns) == ["quality", "value"]
    assert every["quality"].tolist() == [3, 3, 3, pd.NA, pd.NA] and str(every["quality"].dtype) == "UInt32"
    assert every["value"].tolist()[:2] == [1100.0, 950.4] and np.isnan(every["value"].iloc[2])
    latest = client.get_commitment(site, [2])
    assert list(latest.columns) == ["id", "quality", "value"] and latest["value"].tolist() == [1.0, 2.0]


def test_tariff_labels_and_nulls(client: Client, site: int) -> None:
    frame = pd.DataFrame(
        {"label": ["on-peak", None, "off-peak"], "value": [9.85, 5.2, np.nan]},
        index=pd.Index([T0, T0 + 4 * HOUR, T0 + 8 * HOUR], name="timestamp"),
    )
    client.put_tariff(site, frame, id=1)
    out = client.get_tariff(site, 1)
    assert out["label"].dtype == object and out["label"].tolist() == ["on-peak", None, "off-peak"]
    assert out["value"].tolist()[:2] == [9.85, 5.2] and np.isnan(out["value"].iloc[2])
    # The periods in force during [from, to[: the one started before from, then those starting in it.
    assert client.get_tariff(site, 1, start=T0 + HOUR, end=T0 + 5 * HOUR).index.tolist() == [T0, T0 + 4 * HOUR]


def test_reads_past_the_servers_cap_need_no_cursor(client: Client, site: int) -> None:
    rows = MAX_RECORDS * 2 + 500
    stamps = T0 + np.arange(rows, dtype=np.int64) * 1000
    client.put(
        site, "production/metric", {"timestamp": stamps, "id": np.ones(rows, dtype=np.int64), "value": np.arange(rows) / 4}
    )
    out = client.get_production(site, "metric", 1)
    assert len(out) == rows and out.index.tolist() == stamps.tolist() and out["value"].tolist() == (np.arange(rows) / 4).tolist()
    ranged = client.get_production(site, "metric", 1, start=stamps[10], end=stamps[-10])
    assert len(ranged) == rows - 20
    # Vectors: every vintage, more periods than the cap across them.
    periods = T0 + np.arange(700, dtype=np.int64) * MINUTE
    index = pd.MultiIndex.from_product([[T0, T0 + 1, T0 + 2], periods], names=["creation_timestamp", "timestamp"])
    client.put_forecast(site, "wind", pd.DataFrame({"p": np.arange(2100, dtype=float)}, index=index), id=1)
    every = client.get_forecast(site, "wind", 1, generated_after=0, generated_before=T0 + 3, generate_all=True)
    assert len(every) == 2100 and every["p"].tolist() == list(range(2100)) and every.index.equals(index)


def test_a_put_over_the_servers_size_limit_is_sent_in_parts(client: Client, site: int) -> None:
    rows = 60_000
    names = ["l1_p", "l2_p", "l3_p", "l1_q", "l2_q", "l3_q", "l1_i", "l2_i", "l3_i", "l12_u", "l23_u", "l31_u", "f"]
    values = np.random.default_rng(7).normal(400.0, 50.0, size=(rows, len(names)))
    frame = pd.DataFrame(values, columns=names, index=pd.Index(T0 + np.arange(rows, dtype=np.int64) * 1000, name="timestamp"))
    assert values.nbytes > MAX_BODY_BYTES + 1024 * 1024  # the gRPC services take 1 MiB more than a body
    assert client.put_production(site, "meter-3p", frame, id=1) == rows
    pd.testing.assert_frame_equal(client.get_production(site, "meter-3p", 1), frame)


def test_errors_carry_the_api_status(client: Client, site: int) -> None:
    with pytest.raises(ApiError) as unknown:
        client.get_production(site, "renewable", 77)
    assert unknown.value.status_code == 1107 and unknown.value.status_message.startswith("invalid id")
    if is_rest(client):
        assert unknown.value.http_status == 400 and unknown.value.grpc_code is None
    else:
        assert unknown.value.grpc_code == grpc.StatusCode.NOT_FOUND and unknown.value.http_status is None

    bad = pd.DataFrame({"p": [1.0, 2.0, 3.0], "state": [1, -1, 2]}, index=pd.Index([T0, T0 + 1, T0 + 2], name="timestamp"))
    with pytest.raises(ApiError) as refused:
        client.put_production(site, "genset", bad, id=1)
    assert refused.value.status_code == 1303
    assert refused.value.status_message == "payload content error: values[1].state: expected a non-negative integer"
    assert refused.value.row == 1
    with pytest.raises(ApiError):
        client.get_production(site, "genset", 1)  # nothing of the refused put was stored

    # A period's row is named through its vector's place in the request (vectors are grouped by key).
    vectors = pd.DataFrame(
        {
            "creation_timestamp": [T0, T0, T0, T0],
            "id": [6, 5, 6, 5],
            "timestamp": [T0, T0, T0 + 1, T0 + 1],
            "p": [1.0, 2.0, 3.0, 4.0],
        }
    )
    with pytest.raises(ApiError) as duplicated:
        client.put_forecast(site, "demand", vectors.assign(timestamp=[T0, T0, T0, T0 + 1]))
    assert duplicated.value.status_code == 1303 and duplicated.value.row == 2

    client.put_forecast(site, "demand", vectors)
    with pytest.raises(ApiError) as parameters:
        client.get_forecast(site, "demand", 5, generate_all=True)
    assert parameters.value.status_code == 1200


def test_permissions_over_rest(storecast: Storecast, site: int) -> None:
    with connect(storecast, "rest", "reader") as reader, pytest.raises(ApiError) as refused:
        reader.put_tariff(site, pd.DataFrame({"value": [1.0]}, index=pd.Index([T0], name="timestamp")), id=1)
    assert refused.value.status_code == 1400 and refused.value.http_status == 403


def test_a_vector_attribute_must_agree_across_the_vectors_rows(client: Client, site: int) -> None:
    frame = pd.DataFrame(
        {"creation_timestamp": [T0] * 3, "timestamp": [T0, T0 + 1, T0 + 2], "quality": [1, 1, 2], "value": [1.0, 2.0, 3.0]}
    )
    with pytest.raises(RowError) as refused:
        client.put_commitment(site, frame, id=1)
    assert (
        refused.value.row == 2
        and str(refused.value) == f"quality differs between the rows of one vector (id=1, creation_timestamp={T0})"
    )
