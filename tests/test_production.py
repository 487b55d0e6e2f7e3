"""Production records end to end: every type round-trips, keys replace, PUTs are atomic."""

from __future__ import annotations

import random

import httpx
import pytest

from storecast.catalog import EQUIPMENT_TYPES, Kind, RecordType
from tests.conftest import MAX_RECORDS, assert_error, ok, put
from tests.helpers import T0, JsonObject


def full_record(equipment: RecordType, timestamp: int, rng: random.Random, record_id: int = 1) -> JsonObject:
    record: JsonObject = {"timestamp": timestamp, "id": record_id}
    for attribute in equipment.attributes:
        if attribute.kind is Kind.FLOAT:
            record[attribute.name] = round(rng.uniform(-1000, 1000), 3)
        else:
            record[attribute.name] = rng.randrange(0, 2**32)
    return record


@pytest.mark.parametrize("equipment", EQUIPMENT_TYPES.values(), ids=lambda e: e.name)
def test_every_type_round_trips_every_attribute(admin: httpx.Client, site: int, equipment: RecordType) -> None:
    rng = random.Random(equipment.name)
    records = [full_record(equipment, T0 + i * 1000, rng) for i in range(5)]
    # One record with only the key: every attribute comes back null.
    records.append({"timestamp": T0 + 5000, "id": 1})
    ok(put(admin, f"/v1/{site}/production/{equipment.name}", records), 201)

    body = ok(admin.get(f"/v1/{site}/production/{equipment.name}/1"))
    expected = records[:-1] + [{"timestamp": T0 + 5000, "id": 1, **{a.name: None for a in equipment.attributes}}]
    assert body["results"] == expected
    for result in body["results"][:-1]:
        assert list(result) == ["timestamp", "id", *(a.name for a in equipment.attributes)]
        for attribute in equipment.attributes:
            expected_type = float if attribute.kind is Kind.FLOAT else int
            assert type(result[attribute.name]) is expected_type, (attribute.name, result)


def test_float_attributes_accept_integers_and_come_back_as_floats(admin: httpx.Client, site: int) -> None:
    ok(put(admin, f"/v1/{site}/production/battery", [{"timestamp": T0, "id": 1, "p": 100, "p_ch": -1000.0, "state": 4}]), 201)
    (result,) = ok(admin.get(f"/v1/{site}/production/battery/1"))["results"]
    assert result["p"] == 100.0 and type(result["p"]) is float
    assert result["p_ch"] == -1000.0 and type(result["p_ch"]) is float
    assert result["state"] == 4 and type(result["state"]) is int


def test_extreme_floats_survive(admin: httpx.Client, site: int) -> None:
    values = [0.0, -0.0, 1e-300, 5e-324, 1.7976931348623157e308, -1e21, 1e20, 0.1, 123456789.123456789]
    ok(
        put(admin, f"/v1/{site}/production/metric", [{"timestamp": T0 + i, "id": 7, "value": v} for i, v in enumerate(values)]),
        201,
    )
    results = ok(admin.get(f"/v1/{site}/production/metric/7"))["results"]
    assert [r["value"] for r in results] == values


def test_a_later_put_replaces_the_record(admin: httpx.Client, site: int) -> None:
    path = f"/v1/{site}/production/genset"
    ok(put(admin, path, [{"timestamp": T0, "id": 1, "p": 1.5, "q": 2.5, "state": 3}]), 201)
    ok(put(admin, path, [{"timestamp": T0, "id": 1, "p": 9.5}]), 201)
    assert ok(admin.get(f"{path}/1"))["results"] == [{"timestamp": T0, "id": 1, "p": 9.5, "q": None, "state": None}]


def test_within_one_request_the_last_occurrence_wins(admin: httpx.Client, site: int) -> None:
    path = f"/v1/{site}/production/meter-dc"
    records = [
        {"timestamp": T0, "id": 1, "p": 1.0},
        {"timestamp": T0 + 1, "id": 1, "p": 2.0},
        {"timestamp": T0, "id": 2, "p": 3.0},
        {"timestamp": T0, "id": 1, "p": 4.0, "u": 230.0},
    ]
    ok(put(admin, path, records), 201)
    assert ok(admin.get(f"{path}/1"))["results"] == [
        {"timestamp": T0, "id": 1, "p": 4.0, "u": 230.0},
        {"timestamp": T0 + 1, "id": 1, "p": 2.0, "u": None},
    ]
    assert ok(admin.get(f"{path}/2"))["results"] == [{"timestamp": T0, "id": 2, "p": 3.0, "u": None}]


def test_one_bad_record_among_100_stores_nothing(admin: httpx.Client, site: int) -> None:
    path = f"/v1/{site}/production/thermometer"
    ok(put(admin, path, [{"timestamp": T0 - 1, "id": 1, "t": -5.0}]), 201)
    records: list[JsonObject] = [{"timestamp": T0 + i * 1000, "id": 1, "t": 20.0 + i} for i in range(100)]
    records[73]["t"] = "warm"
    assert_error(put(admin, path, records), 400, 1303, "values[73].t")
    # Nothing of the refused request, and the earlier record untouched.
    assert ok(admin.get(f"{path}/1"))["results"] == [{"timestamp": T0 - 1, "id": 1, "t": -5.0}]


def test_records_come_back_ascending_and_filtered_half_open(admin: httpx.Client, site: int) -> None:
    path = f"/v1/{site}/production/hygrometer"
    timestamps = list(range(T0, T0 + 10_000, 1000))
    shuffled = timestamps[:]
    random.Random(1).shuffle(shuffled)
    ok(put(admin, path, [{"timestamp": t, "id": 3, "h": float(t % 100_000)} for t in shuffled]), 201)
    results = ok(admin.get(f"{path}/3", params={"from": T0 + 2000, "to": T0 + 5000}))["results"]
    assert [r["timestamp"] for r in results] == [T0 + 2000, T0 + 3000, T0 + 4000]
    assert [r["timestamp"] for r in ok(admin.get(f"{path}/3"))["results"]] == timestamps


def test_a_known_id_with_nothing_in_range_is_an_empty_success(admin: httpx.Client, site: int) -> None:
    path = f"/v1/{site}/production/pyranometer"
    ok(put(admin, path, [{"timestamp": T0, "id": 1, "irr": 800.0}]), 201)
    assert ok(admin.get(f"{path}/1", params={"from": T0 + 1, "to": T0 + 2}))["results"] == []


def test_an_id_never_stored_is_1107(admin: httpx.Client, site: int) -> None:
    path = f"/v1/{site}/production/anemometer"
    ok(put(admin, path, [{"timestamp": T0, "id": 1, "speed": 3.0}]), 201)
    assert_error(admin.get(f"{path}/2"), 400, 1107)
    # Same id, other type or other site: unknown there too.
    assert_error(admin.get(f"/v1/{site}/production/renewable/1"), 400, 1107)
    assert_error(admin.get(f"/v1/{site + 1_000_000}/production/anemometer/1"), 400, 1107)


def test_sites_and_ids_are_isolated(admin: httpx.Client, site: int) -> None:
    for target_site, record_id, value in [(site, 1, 1.0), (site, 2, 2.0), (site + 1_000_000, 1, 3.0)]:
        ok(put(admin, f"/v1/{target_site}/production/metric", [{"timestamp": T0, "id": record_id, "value": value}]), 201)
    assert ok(admin.get(f"/v1/{site}/production/metric/1"))["results"][0]["value"] == 1.0
    assert ok(admin.get(f"/v1/{site}/production/metric/2"))["results"][0]["value"] == 2.0
    assert ok(admin.get(f"/v1/{site + 1_000_000}/production/metric/1"))["results"][0]["value"] == 3.0


def test_partial_responses_cover_every_record_exactly_once(admin: httpx.Client, site: int) -> None:
    path = f"/v1/{site}/production/status"
    total = 2 * MAX_RECORDS + 123
    ok(put(admin, path, [{"timestamp": T0 + i * 500, "id": 9, "value": i} for i in range(total)]), 201)
    seen: list[int] = []
    start, end = T0, T0 + total * 500
    while True:
        response = admin.get(f"{path}/9", params={"from": start, "to": end})
        body = response.json()
        seen += [r["value"] for r in body["results"]]
        if response.status_code == 200:
            assert body["status_code"] == 1000 and "next_from" not in body
            break
        assert response.status_code == 206
        assert body["status_code"] == 1001 and body["status_message"] == "partial response"
        assert len(body["results"]) == MAX_RECORDS
        assert body["next_from"] > body["results"][-1]["timestamp"]
        start = body["next_from"]
    assert seen == list(range(total))


def test_partial_response_without_a_range(admin: httpx.Client, site: int) -> None:
    path = f"/v1/{site}/production/status"
    ok(put(admin, path, [{"timestamp": T0 + i, "id": 1, "value": i} for i in range(MAX_RECORDS + 1)]), 201)
    response = admin.get(f"{path}/1")
    assert response.status_code == 206
    assert response.json()["next_from"] == T0 + MAX_RECORDS


def test_head_is_get_without_a_body(admin: httpx.Client, site: int) -> None:
    path = f"/v1/{site}/production/metric"
    ok(put(admin, path, [{"timestamp": T0, "id": 1, "value": 1.0}]), 201)
    response = admin.head(f"{path}/1")
    assert response.status_code == 200 and response.content == b""
    assert response.headers["x-request-id"]


def test_every_response_has_a_request_id(admin: httpx.Client) -> None:
    ids = {admin.get(path).headers["x-request-id"] for path in ["/v1/1/production/metric/1", "/nope", "/v1/x/tariff"]}
    assert len(ids) == 3 and all(len(i) == 32 for i in ids)
