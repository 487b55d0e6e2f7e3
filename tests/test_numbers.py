"""Numbers as clients send them, end to end (docs/api/v1.md §2): an integral-valued number
(`1.0`, `1e3`) counts as that integer wherever an integer is expected in a PUT body,
is stored as one and reads back as one; anything else is refused as before.

Python's json.dumps writes a float timestamp as 1535104800000.0, and pandas holds an
integer column with a gap as float64: those bodies are sent here as such clients send them.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from storecast.catalog import COMMITMENT, EQUIPMENT_TYPES, FORECAST_TYPES, UINT32_MAX, Attribute, Kind
from tests.conftest import assert_error, ok, put
from tests.helpers import MINUTE, T0, JsonObject, raw_put


def unsigned(attributes: tuple[Attribute, ...], value: Any) -> dict[str, Any]:
    return {a.name: value for a in attributes if a.kind is Kind.UNSIGNED_INT}


def assert_integers(results: list[JsonObject], keys: set[str]) -> None:
    """Every value of these keys, in the results and in their periods, is a JSON integer (or null)."""
    for result in results:
        for key in keys & result.keys():
            assert result[key] is None or type(result[key]) is int, result
        assert_integers(result.get("values", []), keys)


@pytest.mark.parametrize("type_name", sorted(EQUIPMENT_TYPES))
def test_float_timestamps_ids_and_unsigned_attributes_are_stored_as_integers(
    admin: httpx.Client, site: int, type_name: str
) -> None:
    path = f"/v1/{site}/production/{type_name}"
    attributes = unsigned(EQUIPMENT_TYPES[type_name].attributes, 3.0)
    # As json.dumps writes floats: 1535104800000.0, 7.0, 3.0.
    records = [{"timestamp": float(T0 + i * MINUTE), "id": 7.0, **attributes} for i in range(3)]
    assert b'"timestamp": 1535104800000.0' in json.dumps({"values": records}).encode()
    assert ok(put(admin, path, records), 201)["status_code"] == 1000
    response = admin.get(f"{path}/7")
    results = ok(response)["results"]
    assert [(r["timestamp"], r["id"]) for r in results] == [(T0 + i * MINUTE, 7) for i in range(3)]
    assert all(r[name] == 3 for r in results for name in attributes)
    assert_integers(results, {"timestamp", "id", *attributes})
    assert '"timestamp":1535104800000,' in response.text.replace(" ", "")


def test_exponents_negative_zero_and_the_largest_values(admin: httpx.Client, site: int) -> None:
    path = f"/v1/{site}/production/battery"
    body = (
        b'{"values":[{"timestamp":1.5351048e12,"id":4294967295.0,"state":1e3},'
        b'{"timestamp":1535104860000.0,"id":4.294967295E9,"state":-0.0}]}'
    )
    ok(raw_put(admin, path, body), 201)
    results = ok(admin.get(f"{path}/{UINT32_MAX}"))["results"]
    assert [(r["timestamp"], r["id"], r["state"]) for r in results] == [(T0, UINT32_MAX, 1000), (T0 + MINUTE, UINT32_MAX, 0)]
    assert_integers(results, {"timestamp", "id", "state"})


def test_a_float_key_is_the_same_key_as_its_integer(admin: httpx.Client, site: int) -> None:
    path = f"/v1/{site}/production/genset"
    # Within one request the last occurrence of a key wins, however it is written...
    records = [{"timestamp": T0, "id": 1, "state": 1}, {"timestamp": float(T0), "id": 1.0, "state": 2.0}]
    ok(put(admin, path, records), 201)
    assert ok(admin.get(f"{path}/1"))["results"] == [{"timestamp": T0, "id": 1, "p": None, "q": None, "state": 2}]
    # ...and a later PUT of the key replaces the record.
    ok(put(admin, path, [{"timestamp": T0, "id": 1, "p": 5.5}]), 201)
    assert ok(admin.get(f"{path}/1"))["results"] == [{"timestamp": T0, "id": 1, "p": 5.5, "q": None, "state": None}]


def test_pandas_style_gappy_integer_columns(admin: httpx.Client, site: int) -> None:
    # A column of integers with a gap is float64 in pandas: the gap is null, the rest are floats.
    path = f"/v1/{site}/production/status"
    states = [1.0, None, 3.0, 0.0]
    ok(put(admin, path, [{"timestamp": float(T0 + i), "id": 2.0, "value": v} for i, v in enumerate(states)]), 201)
    results = ok(admin.get(f"{path}/2"))["results"]
    assert [r["value"] for r in results] == [1, None, 3, 0]
    assert_integers(results, {"timestamp", "id", "value"})


@pytest.mark.parametrize("category", [*(f"forecast/{name}" for name in sorted(FORECAST_TYPES)), "commitment"])
def test_vectors_with_float_numbers_read_back_as_integers(admin: httpx.Client, site: int, category: str) -> None:
    record_type = FORECAST_TYPES[category.removeprefix("forecast/")] if category != "commitment" else COMMITMENT
    path = f"/v1/{site}/{category}"
    periods = [{"timestamp": float(T0 + i * MINUTE), **unsigned(record_type.attributes, 2.0)} for i in range(2)]
    vector = {"creation_timestamp": float(T0), "id": 5.0, "values": periods, **unsigned(record_type.vector_attributes, 1.0)}
    ok(put(admin, path, [vector]), 201)
    response = admin.get(f"{path}/5")
    (result,) = ok(response)["results"]
    assert (result["creation_timestamp"], result["id"]) == (T0, 5)
    assert [p["timestamp"] for p in result["values"]] == [T0, T0 + MINUTE]
    for name in unsigned(record_type.vector_attributes, 0):
        assert result[name] == 1
    for name in unsigned(record_type.attributes, 0):
        assert [p[name] for p in result["values"]] == [2, 2]
    integer_names = {"creation_timestamp", "id", "timestamp", "quality"}
    assert "quality" in unsigned(record_type.attributes + record_type.vector_attributes, 0)
    assert_integers([result], integer_names)
    assert '"creation_timestamp":1535104800000,' in response.text.replace(" ", "")


def test_tariff_with_float_numbers_reads_back_as_integers(admin: httpx.Client, site: int) -> None:
    path = f"/v1/{site}/tariff"
    periods = [{"timestamp": float(T0), "label": "peak", "value": 0.25}, {"timestamp": 1.53510486e12, "value": 1.0}]
    ok(put(admin, path, [{"id": 3.0, "values": periods}]), 201)
    response = admin.get(f"{path}/3")
    results = ok(response)["results"]
    assert [(r["id"], [p["timestamp"] for p in r["values"]]) for r in results] == [(3, [T0, T0 + MINUTE])]
    assert [p["value"] for p in results[0]["values"]] == [0.25, 1.0]
    assert_integers(results, {"id", "timestamp"})


@pytest.mark.parametrize(
    ("record", "detail"),
    [
        ({"timestamp": T0 + 0.5, "id": 1}, "values[0].timestamp: expected a non-negative integer, got a decimal number"),
        ({"timestamp": -1.0, "id": 1}, "values[0].timestamp: expected a non-negative integer"),
        ({"timestamp": 7258118400000.0, "id": 1}, "values[0].timestamp: expected a timestamp below 7258118400000"),
        ({"timestamp": float(T0), "id": 4294967296.0}, "values[0].id: expected an integer <= 4294967295"),
        (
            {"timestamp": float(T0), "id": 1, "state": 1.5},
            "values[0].state: expected a non-negative integer or null, got a decimal number",
        ),
        ({"timestamp": float(T0), "id": "1"}, "values[0].id: expected a non-negative integer, got a string"),
        ({"timestamp": float(T0), "id": True}, "values[0].id: expected a non-negative integer, got a boolean"),
    ],
)
def test_other_numbers_are_refused_as_before(admin: httpx.Client, site: int, record: JsonObject, detail: str) -> None:
    path = f"/v1/{site}/production/battery"
    assert_error(put(admin, path, [{"timestamp": float(T0 - 1), "id": 1.0}, record]), 400, 1303, detail.replace("[0]", "[1]"))
    # Nothing of the refused request is stored: the id was never written.
    assert_error(admin.get(f"{path}/1"), 400, 1107)


def test_a_query_string_still_takes_digits_only(admin: httpx.Client, site: int) -> None:
    path = f"/v1/{site}/production/meter"
    ok(put(admin, path, [{"timestamp": float(T0), "id": 1.0}]), 201)
    assert_error(admin.get(f"{path}/1", params={"from": f"{T0}.0", "to": T0 + 1}), 400, 1201)
