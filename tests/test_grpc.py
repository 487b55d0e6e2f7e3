"""Internal callers over gRPC get the validation REST callers get, and health checks."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any, TypedDict

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from storecast.v1 import catalog_pb2, ingest_pb2, ingest_pb2_grpc, query_pb2, query_pb2_grpc, records_pb2
from tests.helpers import T0, rpc_failure


def api_error(call: Callable[[], object]) -> tuple[grpc.StatusCode, int, str]:
    status, failure = rpc_failure(call)
    return status, failure.code, failure.message


def test_every_service_reports_serving(grpc_channel: grpc.Channel) -> None:
    health = health_pb2_grpc.HealthStub(grpc_channel)
    for service in ("", "storecast.v1.Ingest", "storecast.v1.Query"):
        reply = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=10)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING


def test_put_and_get_over_grpc(grpc_channel: grpc.Channel, site: int) -> None:
    ingest = ingest_pb2_grpc.IngestStub(grpc_channel)
    query = query_pb2_grpc.QueryStub(grpc_channel)
    body = b'{"values":[{"timestamp":%d,"id":5,"t":21.5},{"timestamp":%d,"id":5}]}' % (T0, T0 + 1)
    reply = ingest.PutProduction(
        ingest_pb2.PutProductionRequest(site_id=site, equipment_type=catalog_pb2.THERMOMETER, v1_json=body), timeout=30
    )
    assert reply.stored == 2
    records = query.GetProduction(
        query_pb2.GetProductionRequest(site_id=site, equipment_type=catalog_pb2.THERMOMETER, id=5), timeout=30
    )
    assert records.count == 2 and not records.HasField("next_from")
    assert json.loads(records.results_json) == [{"timestamp": T0, "id": 5, "t": 21.5}, {"timestamp": T0 + 1, "id": 5, "t": None}]


@pytest.mark.parametrize(
    ("body", "code", "fragment"),
    [
        (b"", 1302, "empty"),
        (b"{", 1301, ""),
        (b'{"values":[{"timestamp":1,"id":1,"t":"hot"}]}', 1303, "values[0].t: expected a number"),
        (b'{"values":[{"timestamp":1,"id":1},{"timestamp":1,"id":1,"zz":1}]}', 1303, "values[1].zz: unknown attribute"),
    ],
)
def test_ingest_validation_over_grpc(grpc_channel: grpc.Channel, body: bytes, code: int, fragment: str) -> None:
    ingest = ingest_pb2_grpc.IngestStub(grpc_channel)
    request = ingest_pb2.PutProductionRequest(site_id=1, equipment_type=catalog_pb2.THERMOMETER, v1_json=body)
    status, api_code, message = api_error(lambda: ingest.PutProduction(request, timeout=30))
    assert status == grpc.StatusCode.INVALID_ARGUMENT
    assert api_code == code and fragment in message


def test_unknown_equipment_type_over_grpc(grpc_channel: grpc.Channel) -> None:
    ingest = ingest_pb2_grpc.IngestStub(grpc_channel)
    request = ingest_pb2.PutProductionRequest(
        site_id=1, equipment_type=catalog_pb2.EquipmentType.ValueType(99), v1_json=b'{"values":[{"timestamp":1,"id":1}]}'
    )
    assert api_error(lambda: ingest.PutProduction(request, timeout=30))[1] == 1106


def test_put_production_many_answers_each_put_as_it_would_be_answered_alone(grpc_channel: grpc.Channel, site: int) -> None:
    ingest = ingest_pb2_grpc.IngestStub(grpc_channel)
    query = query_pb2_grpc.QueryStub(grpc_channel)

    def put(body: bytes, equipment: int = catalog_pb2.THERMOMETER) -> ingest_pb2.PutProductionRequest:
        return ingest_pb2.PutProductionRequest(site_id=site, equipment_type=equipment, v1_json=body)  # type: ignore[arg-type]

    puts = [
        put(b'{"values":[{"timestamp":%d,"id":7,"t":1.5}]}' % T0),
        put(b'{"values":[{"timestamp":%d,"id":7,"t":"hot"}]}' % (T0 + 1)),
        put(b'{"values":[{"timestamp":%d,"id":7},{"timestamp":%d,"id":7,"t":3}]}' % (T0 + 2, T0 + 3)),
        put(b'{"values":[{"timestamp":%d,"id":7}]}' % (T0 + 4), equipment=99),
    ]
    reply = ingest.PutProductionMany(ingest_pb2.PutProductionManyRequest(puts=puts, request_ids=["a", "b", "c", "d"]), timeout=30)
    outcomes = [outcome.WhichOneof("outcome") for outcome in reply.outcomes]
    assert outcomes == ["stored", "error", "stored", "error"]
    assert [reply.outcomes[0].stored.stored, reply.outcomes[2].stored.stored] == [1, 2]
    assert reply.outcomes[1].error.status == 1303 and "values[0].t: expected a number" in reply.outcomes[1].error.message
    assert reply.outcomes[3].error.status == 1106
    # The refused PUTs stored nothing, the others everything.
    records = query.GetProduction(
        query_pb2.GetProductionRequest(site_id=site, equipment_type=catalog_pb2.THERMOMETER, id=7), timeout=30
    )
    assert [record["timestamp"] for record in json.loads(records.results_json)] == [T0, T0 + 2, T0 + 3]


def test_get_production_at_once_answers_what_memory_holds_and_leaves_the_rest(grpc_channel: grpc.Channel, site: int) -> None:
    ingest = ingest_pb2_grpc.IngestStub(grpc_channel)
    query = query_pb2_grpc.QueryStub(grpc_channel)
    now = int(time.time() * 1000) // 1000 * 1000
    body = b'{"values":[{"timestamp":%d,"id":8,"t":4.5}]}' % now
    ingest.PutProduction(
        ingest_pb2.PutProductionRequest(site_id=site, equipment_type=catalog_pb2.THERMOMETER, v1_json=body), timeout=30
    )

    def read(**fields: Any) -> query_pb2.GetProductionRequest:
        return query_pb2.GetProductionRequest(**{"site_id": site, "equipment_type": catalog_pb2.THERMOMETER, **fields})

    reads = [
        read(id=8, range=records_pb2.Interval(start_ms=now, end_ms=now + 1)),  # just written: memory holds it
        read(id=9, range=records_pb2.Interval(start_ms=now, end_ms=now + 1)),  # never written: the store's to answer
        read(id=8, equipment_type=catalog_pb2.EquipmentType.ValueType(99)),  # refused as GetProduction refuses it
    ]
    # Memory answers for a new series once the flush has seen what the store holds of it (about a second).
    deadline = time.monotonic() + 30
    while True:
        reply = query.GetProductionAtOnce(query_pb2.GetProductionManyRequest(reads=reads), timeout=30)
        answered = [outcome.WhichOneof("outcome") for outcome in reply.outcomes]
        if answered[0] is not None or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert answered == ["records", None, "error"]
    assert json.loads(reply.outcomes[0].records.results_json) == [{"timestamp": now, "id": 8, "t": 4.5}]
    assert reply.outcomes[2].error.status == 1106


class GetProductionFields(TypedDict, total=False):
    """Fields of a GetProductionRequest, as keyword arguments."""

    site_id: int
    equipment_type: catalog_pb2.EquipmentType.ValueType
    id: int
    range: records_pb2.Interval
    aggregation: records_pb2.Aggregation.ValueType
    period_ms: int


# Requests for meter 1 of site 1 but for these fields, and the code each is refused with.
QUERY_CASES: list[tuple[GetProductionFields, int]] = [
    ({"range": records_pb2.Interval(start_ms=-1, end_ms=5)}, 1201),
    ({"range": records_pb2.Interval(start_ms=1, end_ms=7_258_118_400_000)}, 1202),
    ({"range": records_pb2.Interval(start_ms=5, end_ms=5)}, 1200),
    ({"aggregation": records_pb2.AVG}, 1200),
    ({"aggregation": records_pb2.AVG, "range": records_pb2.Interval(start_ms=1, end_ms=5)}, 1200),
    ({"period_ms": 60_000}, 1200),
    (
        {
            "aggregation": records_pb2.Aggregation.ValueType(42),
            "range": records_pb2.Interval(start_ms=1, end_ms=5),
            "period_ms": 1,
        },
        1205,
    ),
    ({"aggregation": records_pb2.MIN, "range": records_pb2.Interval(start_ms=1, end_ms=5), "period_ms": 0}, 1206),
    ({"aggregation": records_pb2.MIN, "range": records_pb2.Interval(start_ms=1, end_ms=5), "period_ms": -5}, 1206),
    ({"equipment_type": catalog_pb2.EQUIPMENT_TYPE_UNSPECIFIED}, 1106),
    ({"id": 987654}, 1107),
]


@pytest.mark.parametrize(("fields", "code"), QUERY_CASES)
def test_query_validation_over_grpc(grpc_channel: grpc.Channel, fields: GetProductionFields, code: int) -> None:
    query = query_pb2_grpc.QueryStub(grpc_channel)
    request_fields: GetProductionFields = {"site_id": 1, "equipment_type": catalog_pb2.METER, "id": 1, **fields}
    request = query_pb2.GetProductionRequest(**request_fields)
    assert api_error(lambda: query.GetProduction(request, timeout=30))[1] == code


def test_max_records_per_call_is_capped_by_the_server(grpc_channel: grpc.Channel, site: int) -> None:
    ingest = ingest_pb2_grpc.IngestStub(grpc_channel)
    query = query_pb2_grpc.QueryStub(grpc_channel)
    body = b'{"values":[%s]}' % b",".join(b'{"timestamp":%d,"id":1,"value":%d}' % (T0 + i, i) for i in range(10))
    ingest.PutProduction(
        ingest_pb2.PutProductionRequest(site_id=site, equipment_type=catalog_pb2.STATUS, v1_json=body), timeout=30
    )
    records = query.GetProduction(
        query_pb2.GetProductionRequest(site_id=site, equipment_type=catalog_pb2.STATUS, id=1, max_records=3), timeout=30
    )
    assert records.count == 3 and records.next_from == T0 + 3
