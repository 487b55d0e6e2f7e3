"""The typed gRPC API: RecordBatch Puts and Gets, streams, reflection, against a real server.

Typed input must be stored exactly as the same records sent as v1 JSON, and
refused with the same API status and message.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import grpc
import pytest
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from storecast.catalog import COMMITMENT, EQUIPMENT_TYPES, FORECAST_TYPES, TARIFF, Attribute, Kind, RecordType
from storecast.v1 import (
    catalog_pb2,
    ingest_pb2,
    ingest_pb2_grpc,
    query_pb2,
    query_pb2_grpc,
    records_pb2,
    vector_pb2,
    vector_pb2_grpc,
)
from tests.conftest import MAX_RECORDS
from tests.helpers import T0, JsonObject, body, column, production_batch, rpc_failure, vector_batch

Batch = records_pb2.RecordBatch


def sample(attribute: Attribute, row: int) -> Any:
    """A value of the attribute's kind for a row; every third row null."""
    if row % 3 == 2:
        return None
    if attribute.kind is Kind.FLOAT:
        return row * 1.25 - 7.5
    if attribute.kind is Kind.UNSIGNED_INT:
        return row % 5
    return f"label-{row}"


def records_of(record_type: RecordType, rows: int) -> list[JsonObject]:
    return [
        {"timestamp": T0 + 60_000 * row, "id": 7, **{a.name: sample(a, row) for a in record_type.attributes}}
        for row in range(rows)
    ]


def vectors_of(record_type: RecordType, count: int, periods: int) -> list[JsonObject]:
    vectors = []
    for index in range(count):
        vector: JsonObject = {"creation_timestamp": T0 + index * 3_600_000, "id": 7}
        vector |= {a.name: sample(a, index + 1) for a in record_type.vector_attributes}
        # Periods in reverse order: the server sorts them.
        vector["values"] = [
            {"timestamp": T0 + 900_000 * p, **{a.name: sample(a, p + index) for a in record_type.attributes}}
            for p in reversed(range(periods))
        ]
        vectors.append(vector)
    return vectors


@pytest.fixture
def ingest(grpc_channel: grpc.Channel) -> ingest_pb2_grpc.IngestStub:
    return ingest_pb2_grpc.IngestStub(grpc_channel)


@pytest.fixture
def query(grpc_channel: grpc.Channel) -> query_pb2_grpc.QueryStub:
    return query_pb2_grpc.QueryStub(grpc_channel)


@pytest.fixture
def vector(grpc_channel: grpc.Channel) -> vector_pb2_grpc.VectorStub:
    return vector_pb2_grpc.VectorStub(grpc_channel)


# ---- round trips ------------------------------------------------------------------


@pytest.mark.parametrize("name", list(EQUIPMENT_TYPES))
def test_every_equipment_type_round_trips_typed_and_matches_json(
    ingest: ingest_pb2_grpc.IngestStub, query: query_pb2_grpc.QueryStub, site: int, name: str
) -> None:
    equipment = EQUIPMENT_TYPES[name]
    kind = catalog_pb2.EquipmentType.ValueType(equipment.enum_value)
    records = records_of(equipment, 10)
    typed_put = ingest_pb2.PutProductionRequest(site_id=site, equipment_type=kind, batch=production_batch(equipment, records))
    assert ingest.PutProduction(typed_put, timeout=30).stored == 10
    as_json = [{**r, "id": 8} for r in records]
    ingest.PutProduction(ingest_pb2.PutProductionRequest(site_id=site, equipment_type=kind, v1_json=body(as_json)), timeout=30)

    def get(record_id: int, fmt: records_pb2.ResultFormat.ValueType) -> records_pb2.Records:
        request = query_pb2.GetProductionRequest(site_id=site, equipment_type=kind, id=record_id, format=fmt)
        return query.GetProduction(request, timeout=30)

    typed = get(7, records_pb2.BATCH)
    assert typed.count == 10 and not typed.results_json
    assert typed.batch == production_batch(equipment, records)
    # Stored alike: the typed records read back as JSON are the JSON ones, but for the id.
    assert [{**r, "id": 8} for r in json.loads(get(7, records_pb2.V1_JSON).results_json)] == json.loads(
        get(8, records_pb2.V1_JSON).results_json
    )


@pytest.mark.parametrize("name", [*FORECAST_TYPES, "commitment"])
def test_every_vector_type_round_trips_typed_and_matches_json(vector: vector_pb2_grpc.VectorStub, site: int, name: str) -> None:
    record_type = COMMITMENT if name == "commitment" else FORECAST_TYPES[name]
    vectors = vectors_of(record_type, 3, 4)
    as_json = [{**v, "id": 8} for v in vectors]
    if name == "commitment":
        vector.PutCommitment(vector_pb2.PutCommitmentRequest(site_id=site, batch=vector_batch(record_type, vectors)), timeout=30)
        vector.PutCommitment(vector_pb2.PutCommitmentRequest(site_id=site, v1_json=body(as_json)), timeout=30)

        def get(record_id: int, fmt: records_pb2.ResultFormat.ValueType) -> records_pb2.Records:
            request = vector_pb2.GetCommitmentRequest(site_id=site, id=record_id, generate_all=True, format=fmt)
            request.generated.CopyFrom(records_pb2.Interval(start_ms=0, end_ms=T0 * 2))
            return vector.GetCommitment(request, timeout=30)
    else:
        kind = catalog_pb2.ForecastType.ValueType(record_type.enum_value)
        typed_put = vector_pb2.PutForecastRequest(site_id=site, forecast_type=kind, batch=vector_batch(record_type, vectors))
        assert vector.PutForecast(typed_put, timeout=30).stored == 3
        vector.PutForecast(vector_pb2.PutForecastRequest(site_id=site, forecast_type=kind, v1_json=body(as_json)), timeout=30)

        def get(record_id: int, fmt: records_pb2.ResultFormat.ValueType) -> records_pb2.Records:
            request = vector_pb2.GetForecastRequest(site_id=site, forecast_type=kind, id=record_id, generate_all=True, format=fmt)
            request.generated.CopyFrom(records_pb2.Interval(start_ms=0, end_ms=T0 * 2))
            return vector.GetForecast(request, timeout=30)

    typed = get(7, records_pb2.BATCH)
    assert typed.count == 12
    ascending = [{**v, "values": sorted(v["values"], key=lambda p: p["timestamp"])} for v in vectors]
    assert typed.batch == vector_batch(record_type, ascending)
    assert [{**v, "id": 8} for v in json.loads(get(7, records_pb2.V1_JSON).results_json)] == json.loads(
        get(8, records_pb2.V1_JSON).results_json
    )


def test_tariffs_round_trip_typed_and_match_json(vector: vector_pb2_grpc.VectorStub, site: int) -> None:
    periods = records_of(TARIFF, 6)
    for period in periods:
        del period["id"]
    entries: list[JsonObject] = [{"id": 7, "values": periods}]
    vector.PutTariff(vector_pb2.PutTariffRequest(site_id=site, batch=vector_batch(TARIFF, entries, False)), timeout=30)
    vector.PutTariff(vector_pb2.PutTariffRequest(site_id=site, v1_json=body([{**entries[0], "id": 8}])), timeout=30)

    def get(record_id: int, fmt: records_pb2.ResultFormat.ValueType) -> records_pb2.Records:
        return vector.GetTariff(vector_pb2.GetTariffRequest(site_id=site, id=record_id, format=fmt), timeout=30)

    typed = get(7, records_pb2.BATCH)
    assert typed.count == 6 and typed.batch == vector_batch(TARIFF, entries, False)
    assert [{**e, "id": 8} for e in json.loads(get(7, records_pb2.V1_JSON).results_json)] == json.loads(
        get(8, records_pb2.V1_JSON).results_json
    )


def test_a_typed_put_keeps_the_last_of_a_key_as_json_does(
    ingest: ingest_pb2_grpc.IngestStub, query: query_pb2_grpc.QueryStub, site: int
) -> None:
    meter = EQUIPMENT_TYPES["meter"]
    records: list[JsonObject] = [
        {"timestamp": T0, "id": 7, "p": 1.0},
        {"timestamp": T0, "id": 7, "p": 2.0},
        {"timestamp": T0 + 1, "id": 7, "p": 3.0},
    ]
    batch = Batch(timestamps=[r["timestamp"] for r in records], ids=[7, 7, 7])
    batch.columns.append(column(next(a for a in meter.attributes if a.name == "p"), [r["p"] for r in records]))
    request = ingest_pb2.PutProductionRequest(site_id=site, equipment_type=catalog_pb2.METER, batch=batch)
    assert ingest.PutProduction(request, timeout=30).stored == 2
    read = query_pb2.GetProductionRequest(site_id=site, equipment_type=catalog_pb2.METER, id=7, format=records_pb2.BATCH)
    result = query.GetProduction(read, timeout=30).batch
    assert list(next(c for c in result.columns if c.name == "p").doubles) == [2.0, 3.0]


# ---- streams ----------------------------------------------------------------------


def test_a_stream_returns_every_record_without_a_cursor(
    ingest: ingest_pb2_grpc.IngestStub, query: query_pb2_grpc.QueryStub, site: int
) -> None:
    rows = MAX_RECORDS * 5 + 17
    batch = Batch(timestamps=[T0 + i for i in range(rows)], ids=[3] * rows)
    batch.columns.append(records_pb2.Column(name="p", doubles=[float(i) for i in range(rows)]))
    ingest.PutProduction(ingest_pb2.PutProductionRequest(site_id=site, equipment_type=catalog_pb2.METER, batch=batch), timeout=60)
    request = query_pb2.GetProductionRequest(site_id=site, equipment_type=catalog_pb2.METER, id=3)
    batches = list(query.StreamProduction(request, timeout=60))
    assert len(batches) == 6 and all(len(b.timestamps) <= MAX_RECORDS for b in batches)
    assert [t for b in batches for t in b.timestamps] == list(batch.timestamps)
    assert [v for b in batches for v in b.columns[0].doubles] == list(batch.columns[0].doubles)
    # The unary read of the same request is cut at the cap and says where to resume.
    cut = query.GetProduction(request, timeout=30)
    assert cut.count == MAX_RECORDS and cut.next_from == T0 + MAX_RECORDS


def test_vector_and_tariff_streams_return_every_period(vector: vector_pb2_grpc.VectorStub, site: int) -> None:
    solar = FORECAST_TYPES["solar"]
    periods = MAX_RECORDS * 2 + 5
    vectors = [{"creation_timestamp": T0, "id": 4, "values": [{"timestamp": T0 + i, "p": float(i)} for i in range(periods)]}]
    forecast = vector_pb2.PutForecastRequest(site_id=site, forecast_type=catalog_pb2.SOLAR, batch=vector_batch(solar, vectors))
    vector.PutForecast(forecast, timeout=60)
    stream = vector.StreamForecast(vector_pb2.GetForecastRequest(site_id=site, forecast_type=catalog_pb2.SOLAR, id=4), timeout=60)
    batches = list(stream)
    assert len(batches) == 3
    assert [t for b in batches for t in b.timestamps] == [T0 + i for i in range(periods)]
    assert all(list(b.creation_timestamps) == [T0] for b in batches)
    entries = [{"id": 4, "values": [{"timestamp": T0 + i, "value": float(i)} for i in range(periods)]}]
    vector.PutTariff(vector_pb2.PutTariffRequest(site_id=site, batch=vector_batch(TARIFF, entries, False)), timeout=60)
    tariffs = list(vector.StreamTariff(vector_pb2.GetTariffRequest(site_id=site, id=4), timeout=60))
    assert [t for b in tariffs for t in b.timestamps] == [T0 + i for i in range(periods)]


def test_a_commitment_stream_cuts_vectors_across_batches(vector: vector_pb2_grpc.VectorStub, site: int) -> None:
    # Three vintages of 700 periods: 2,100 periods in batches of MAX_RECORDS (1,000), vectors split between them.
    vectors = [
        {
            "creation_timestamp": T0 + v,
            "id": 5,
            "quality": v + 1,
            "values": [{"timestamp": T0 + i, "value": float(v * 1000 + i)} for i in range(700)],
        }
        for v in range(3)
    ]
    vector.PutCommitment(vector_pb2.PutCommitmentRequest(site_id=site, batch=vector_batch(COMMITMENT, vectors)), timeout=60)
    request = vector_pb2.GetCommitmentRequest(site_id=site, id=5, generate_all=True)
    request.generated.CopyFrom(records_pb2.Interval(start_ms=0, end_ms=T0 * 2))
    batches = list(vector.StreamCommitment(request, timeout=60))
    assert [len(b.timestamps) for b in batches] == [1000, 1000, 100]
    assert [list(b.creation_timestamps) for b in batches] == [[T0, T0 + 1], [T0 + 1, T0 + 2], [T0 + 2]]
    assert [list(b.period_ends) for b in batches] == [[700, 1000], [400, 1000], [100]]
    assert [list(b.entry_columns[0].uints) for b in batches] == [[1, 2], [2, 3], [3]]
    values = [v for b in batches for v in b.columns[0].doubles]
    assert values == [float(v * 1000 + i) for v in range(3) for i in range(700)]


def test_a_stream_of_an_unknown_id_is_1107(query: query_pb2_grpc.QueryStub, site: int) -> None:
    request = query_pb2.GetProductionRequest(site_id=site, equipment_type=catalog_pb2.METER, id=99)
    assert rpc_failure(lambda: list(query.StreamProduction(request, timeout=30)))[1].code == 1107


# ---- validation ---------------------------------------------------------------------


def meter_batch(**fields: Any) -> Batch:
    batch = Batch(timestamps=[T0, T0 + 1], ids=[1, 1])
    batch.columns.append(records_pb2.Column(name="p", doubles=[1.0, 2.0]))
    for name, value in fields.items():
        batch.ClearField(name)  # type: ignore[arg-type]  # the names are the message's own fields
        getattr(batch, name).extend(value)
    return batch


def with_column(**fields: Any) -> Batch:
    batch = Batch(timestamps=[T0, T0 + 1], ids=[1, 1])
    batch.columns.append(records_pb2.Column(**fields))
    return batch


PRODUCTION_ERRORS: list[tuple[str, Batch, int, str]] = [
    ("empty", Batch(), 1302, "`values` is missing or empty"),
    ("unknown attribute", with_column(name="zz", doubles=[1.0, 2.0]), 1303, "values[0].zz: unknown attribute"),
    ("wrong kind", with_column(name="p", strings=["a", "b"]), 1303, "values[0].p: expected a number or null, got a string"),
    ("nan", with_column(name="p", doubles=[1.0, float("nan")]), 1303, "values[1].p: expected a finite number"),
    ("infinity", with_column(name="p", doubles=[float("inf"), 1.0]), 1303, "values[0].p: expected a finite number"),
    ("negative timestamp", meter_batch(timestamps=[T0, -5]), 1303, "values[1].timestamp: expected a non-negative integer"),
    (
        "timestamp beyond 2200",
        meter_batch(timestamps=[7_258_118_400_000, T0]),
        1303,
        "values[0].timestamp: expected a timestamp below",
    ),
    ("short column", with_column(name="p", doubles=[1.0]), 1303, "columns: p has 1 values for 2 rows"),
    ("short ids", meter_batch(ids=[1]), 1303, "columns: ids has 1 values for 2 rows"),
    ("null map", with_column(name="p", doubles=[1.0, 2.0], null_map=b"\x01"), 1303, "columns: p's null_map has 1 values"),
    ("vector fields", meter_batch(period_ends=[2]), 1303, "columns: production records have no period_ends"),
]


@pytest.mark.parametrize(("case", "batch", "code", "message"), PRODUCTION_ERRORS, ids=[c[0] for c in PRODUCTION_ERRORS])
def test_typed_production_is_refused_as_json_is(
    ingest: ingest_pb2_grpc.IngestStub,
    query: query_pb2_grpc.QueryStub,
    site: int,
    case: str,
    batch: Batch,
    code: int,
    message: str,
) -> None:
    request = ingest_pb2.PutProductionRequest(site_id=site, equipment_type=catalog_pb2.METER, batch=batch)
    status, failure = rpc_failure(lambda: ingest.PutProduction(request, timeout=30))
    assert status == grpc.StatusCode.INVALID_ARGUMENT
    assert failure.code == code and message in failure.message, failure.message
    # Nothing of the refused batch was stored.
    read = query_pb2.GetProductionRequest(site_id=site, equipment_type=catalog_pb2.METER, id=1)
    assert rpc_failure(lambda: query.GetProduction(read, timeout=30))[1].code == 1107


def test_an_integer_attribute_given_as_doubles_names_both_kinds(ingest: ingest_pb2_grpc.IngestStub, site: int) -> None:
    batch = Batch(timestamps=[T0], ids=[1])
    batch.columns.append(records_pb2.Column(name="state", doubles=[1.0]))
    request = ingest_pb2.PutProductionRequest(site_id=site, equipment_type=catalog_pb2.BATTERY, batch=batch)
    failure = rpc_failure(lambda: ingest.PutProduction(request, timeout=30))[1]
    assert (
        failure.message == "payload content error: values[0].state: expected a non-negative integer or null, got a decimal number"
    )


def same_refusal(typed: Callable[[], object], as_json: Callable[[], object]) -> tuple[int, str]:
    """The typed and the JSON form are refused alike; (code, message)."""
    typed_failure, json_failure = rpc_failure(typed)[1], rpc_failure(as_json)[1]
    assert (typed_failure.code, typed_failure.message) == (json_failure.code, json_failure.message)
    return typed_failure.code, typed_failure.message


def test_typed_vectors_are_refused_with_the_json_messages(vector: vector_pb2_grpc.VectorStub, site: int) -> None:
    solar = FORECAST_TYPES["solar"]

    def both(vectors: list[JsonObject]) -> tuple[int, str]:
        def put(request: vector_pb2.PutForecastRequest) -> Callable[[], object]:
            return lambda: vector.PutForecast(request, timeout=30)

        typed = vector_pb2.PutForecastRequest(site_id=site, forecast_type=catalog_pb2.SOLAR, batch=vector_batch(solar, vectors))
        as_json = vector_pb2.PutForecastRequest(site_id=site, forecast_type=catalog_pb2.SOLAR, v1_json=body(vectors))
        return same_refusal(put(typed), put(as_json))

    periods = [{"timestamp": T0, "p": 1.0}, {"timestamp": T0 + 1, "p": 2.0}]
    twice = [
        {"creation_timestamp": T0, "id": 1, "values": periods},
        {"creation_timestamp": T0, "id": 2, "values": [*periods, periods[0]]},
    ]
    repeated = f"values[1].values[2].timestamp: {T0} is already the timestamp of values[1].values[0]"
    assert both(twice)[1].endswith(f"{repeated}; a vector has one period per timestamp")
    late = [{"creation_timestamp": 7_258_118_400_000, "id": 1, "values": periods}]
    assert "values[0].creation_timestamp: expected a timestamp below" in both(late)[1]
    infinite = [{"creation_timestamp": T0, "id": 1, "values": [periods[0], {"timestamp": T0 + 5, "p": float("inf")}]}]
    assert both(infinite) == (1303, "payload content error: values[0].values[1].p: expected a finite number")
    empty = [{"creation_timestamp": T0, "id": 1, "values": periods}, {"creation_timestamp": T0, "id": 2, "values": []}]
    assert both(empty) == (1303, "payload content error: values[1].values: expected a non-empty array")


def test_typed_tariff_labels_are_checked_as_json_ones(vector: vector_pb2_grpc.VectorStub, site: int) -> None:
    label = next(a for a in TARIFF.attributes if a.kind is Kind.STRING)
    assert label.max_length
    entries = [{"id": 1, "values": [{"timestamp": T0, label.name: "x" * (label.max_length + 1)}]}]
    typed = vector_pb2.PutTariffRequest(site_id=site, batch=vector_batch(TARIFF, entries, False))
    as_json = vector_pb2.PutTariffRequest(site_id=site, v1_json=body(entries))
    code, message = same_refusal(lambda: vector.PutTariff(typed, timeout=30), lambda: vector.PutTariff(as_json, timeout=30))
    assert code == 1303 and f"values[0].values[0].{label.name}: expected a string of at most" in message


# ---- reflection -----------------------------------------------------------------------


def test_the_services_answer_reflection(grpc_channel: grpc.Channel) -> None:
    stub = reflection_pb2_grpc.ServerReflectionStub(grpc_channel)

    def requests() -> Iterator[reflection_pb2.ServerReflectionRequest]:
        yield reflection_pb2.ServerReflectionRequest(list_services="")

    (response,) = list(stub.ServerReflectionInfo(requests(), timeout=10))
    names = {service.name for service in response.list_services_response.service}
    assert {"storecast.v1.Ingest", "storecast.v1.Query", "storecast.v1.Vector", "grpc.health.v1.Health"} <= names
