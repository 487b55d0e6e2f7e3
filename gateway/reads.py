"""A GET of records, vectors or tariff periods as one gRPC call: /v1's (with v1's aggregations)
and /ext/v1's (with every aggregation of storecast/aggregations.py)."""

from __future__ import annotations

from collections.abc import Mapping

from starlette.requests import Request
from starlette.responses import Response

from gateway import params, routing
from gateway.backends import Backends
from gateway.responses import request_id_of, results_response, streamed_results_response
from storecast.aggregations import Aggregation
from storecast.v1 import catalog_pb2, query_pb2, records_pb2, vector_pb2

# An unaggregated production read over at least this span (or every record) is streamed from
# the store as it renders it (StreamProductionJson): at 1 Hz its answer is 18 MB or more. A
# shorter one is answered whole, as one message: streaming would cost it a query to find its
# cut at max_records (docs/architecture/data-paths.md, "Long GETs stream"), and its answer is small.
STREAMED_SPAN_MS = 86_400_000


async def read(backends: Backends, request: Request, target: routing.Target, aggregations: Mapping[str, Aggregation]) -> Response:
    """The target's records as its query string selects them, `agg` one of `aggregations`."""
    fields = params.read_fields(request.scope["query_string"], target.category, aggregations)
    request_id = request_id_of(request.scope)
    if target.category == "production":
        production = query_pb2.GetProductionRequest(
            site_id=target.site_id, equipment_type=equipment_type(target), id=target.record_id(), **fields
        )
        if streamed(production):
            return await streamed_results_response(
                request, backends.stream(backends.query.StreamProductionJson, production, request_id)
            )
        records = await backends.production_reads.call(production, request_id)
    elif target.category == "forecast":
        forecast = vector_pb2.GetForecastRequest(
            site_id=target.site_id, forecast_type=forecast_type(target), id=target.record_id(), **fields
        )
        records = await backends.call(backends.vector.GetForecast, forecast, request_id)
    elif target.category == "commitment":
        commitment = vector_pb2.GetCommitmentRequest(site_id=target.site_id, id=target.record_id(), **fields)
        records = await backends.call(backends.vector.GetCommitment, commitment, request_id)
    else:
        tariff = vector_pb2.GetTariffRequest(site_id=target.site_id, id=target.record_id(), **fields)
        records = await backends.call(backends.vector.GetTariff, tariff, request_id)
    return results_response(request, records)


def streamed(production: query_pb2.GetProductionRequest) -> bool:
    if production.aggregation != records_pb2.AGGREGATION_UNSPECIFIED:
        return False
    return not production.HasField("range") or production.range.end_ms - production.range.start_ms >= STREAMED_SPAN_MS


def equipment_type(target: routing.Target) -> catalog_pb2.EquipmentType.ValueType:
    return catalog_pb2.EquipmentType.ValueType(target.type_number())


def forecast_type(target: routing.Target) -> catalog_pb2.ForecastType.ValueType:
    return catalog_pb2.ForecastType.ValueType(target.type_number())
