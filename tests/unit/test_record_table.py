"""A large production body decoded a slice at a time (payload.RecordTable) gives exactly what the whole
body's decoding gives, or leaves the body to it, so that every refusal keeps its words."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from services.ingest.service import RecordInput
from services.lib.records import payload
from services.lib.records.columns import to_columns
from storecast.catalog import EQUIPMENT_TYPES, TIMESTAMP_LIMIT_MS, UINT32_MAX, Kind
from storecast.status import ApiFailure

# Float and unsigned attributes both.
INVERTER = next(t for t in EQUIPMENT_TYPES.values() if {a.kind for a in t.attributes} == {Kind.FLOAT, Kind.UNSIGNED_INT})
STRUCT = payload.record_struct(INVERTER.table_suffix, [("timestamp", payload.Timestamp), ("id", payload.Uint32)], INVERTER)
DECODER = payload.body_decoder(STRUCT, INVERTER.table_suffix)
TABLE = payload.RecordTable(STRUCT)

# Mostly valid values, sometimes one the contract refuses or one the sliced decoding leaves to `decode`.
_ODD = st.sampled_from(["x", True, [], {}, -1, 1e400, 1.5, 2.0, UINT32_MAX + 1])
_FLOAT = st.one_of(st.floats(allow_nan=False, allow_infinity=False), st.integers(-(10**6), 10**6), st.none())
_UNSIGNED = st.one_of(st.integers(0, UINT32_MAX), st.none())


@st.composite
def records(draw: st.DrawFn) -> dict[str, Any]:
    record: dict[str, Any] = {
        "timestamp": draw(st.integers(0, TIMESTAMP_LIMIT_MS - 1)),
        "id": draw(st.integers(0, UINT32_MAX)),
    }
    for attribute in INVERTER.attributes:
        if draw(st.booleans()):
            record[attribute.name] = draw(_FLOAT if attribute.kind is Kind.FLOAT else _UNSIGNED)
    if draw(st.integers(0, 30)) == 0:
        record[draw(st.sampled_from([*record, "unknown"]))] = draw(_ODD)
    return record


def _whole(body: bytes) -> np.ndarray | ApiFailure:
    try:
        columns = to_columns(payload.decode(DECODER, body), STRUCT.__struct_fields__)
    except ApiFailure as failure:
        return failure
    return np.array(columns, dtype=np.float64)


@settings(max_examples=300, deadline=None)
@given(st.lists(records(), max_size=12), st.integers(1, 5))
def test_sliced_decoding_equals_the_whole_bodys_or_leaves_it_to_it(values: list[dict[str, Any]], slice_records: int) -> None:
    body = json.dumps({"values": values}).encode()
    whole = _whole(body)
    table = TABLE.decode(body, slice_records)
    if table is None:
        return
    assert isinstance(whole, np.ndarray), whole
    np.testing.assert_array_equal(table, whole)  # NaN where null, in the same places


def test_a_valid_body_is_taken_whole_and_its_nulls_are_nan() -> None:
    values = [{"timestamp": 1000 + i, "id": i % 3, INVERTER.attributes[0].name: None if i % 2 else i} for i in range(7)]
    table = TABLE.decode(json.dumps({"values": values}).encode(), 2)
    assert table is not None and table.shape == (2 + len(INVERTER.attributes), 7)
    assert table[0].tolist() == [1000 + i for i in range(7)]
    assert np.isnan(table[2][1::2]).all() and table[2][::2].tolist() == [0, 2, 4, 6]


def test_bodies_it_leaves_to_decode() -> None:
    attribute = INVERTER.attributes[0].name
    for body in (
        b'{"values": []}',
        b'{"values": null}',
        b"{}",
        b'{"values": [{"timestamp": 1.0, "id": 1}]}',  # an integral float for an integer
        b'{"values": [{"timestamp": 1, "id": 1, "' + attribute.encode() + b'": "1"}]}',
        b'{"values": [{"timestamp": 1, "id": 1}], "other": 1}',
        b'{"values": [{"timestamp": 1, "id": 1}',
        b'{"values": [{"timestamp": 1, "id": 1, "\xff": 1}]}',
    ):
        assert TABLE.decode(body, 1) is None, body


def test_the_ingest_service_decodes_a_large_body_in_slices_as_it_would_whole() -> None:
    meter = RecordInput(EQUIPMENT_TYPES["meter"])
    values = [{"timestamp": i * 1000, "id": i % 7, "p": i / 3, "q": None} for i in range(80_000)]
    body = msgspec.json.encode({"values": values})
    assert len(body) >= payload.SLICED_BODY_BYTES
    sliced = meter.columns(body)
    timestamps, ids = sliced[0], sliced[1]
    assert isinstance(timestamps, np.ndarray) and isinstance(ids, np.ndarray)
    assert timestamps.dtype == np.int64 and ids.dtype == np.uint32
    whole = to_columns(payload.decode(meter._decoder, body), meter.fields)
    for got, expected in zip(sliced, whole, strict=True):
        np.testing.assert_array_equal(got, np.array(expected, dtype=np.float64))


@given(st.lists(records(), min_size=1, max_size=12))
@settings(max_examples=200, deadline=None)
def test_a_small_body_becomes_the_columns_of_its_records(values: list[dict[str, Any]]) -> None:
    inverter = RecordInput(INVERTER)
    body = json.dumps({"values": values}).encode()
    try:
        expected = to_columns(payload.decode(DECODER, body), STRUCT.__struct_fields__)
    except ApiFailure:
        return
    columns = inverter.columns(body)
    timestamps, ids = columns[0], columns[1]
    assert isinstance(timestamps, np.ndarray) and isinstance(ids, np.ndarray)
    assert timestamps.dtype == np.int64 and ids.dtype == np.uint32
    for got, column in zip(columns, expected, strict=True):
        np.testing.assert_array_equal(got, np.array(column, dtype=np.float64))  # NaN where null
