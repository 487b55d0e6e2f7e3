"""The query service: production records over a range, raw or aggregated."""

from __future__ import annotations

import grpc

from storecast.catalog import EQUIPMENT_BY_ENUM
from storecast.services.lib.keys import KnownIds
from storecast.services.lib.render import JSON_ARRAY_FORMAT, leading_timestamp, limit_array
from storecast.services.lib.rpc import Registration
from storecast.services.lib.schema import PRODUCTION_TABLES
from storecast.services.lib.store import Store
from storecast.services.lib.window import check_window, record_limit
from storecast.services.query.sql import bucket_cut_sql, production_sql
from storecast.status import ApiFailure, ApiStatus
from storecast.v1 import query_pb2, query_pb2_grpc, records_pb2


class QueryService(query_pb2_grpc.QueryServicer):
    def __init__(self, store: Store, max_records: int) -> None:
        self._store = store
        self._max_records = max_records
        self._known_ids = KnownIds()

    def GetProduction(self, request: query_pb2.GetProductionRequest, context: grpc.ServicerContext) -> records_pb2.Records:
        equipment = EQUIPMENT_BY_ENUM.get(request.equipment_type)
        if equipment is None:
            raise ApiFailure(ApiStatus.INVALID_TYPE, f"unknown equipment type {request.equipment_type}")
        window = check_window(
            request.range if request.HasField("range") else None,
            request.aggregation,
            request.period_ms if request.HasField("period_ms") else None,
        )
        limit = record_limit(request.max_records, self._max_records)
        table = self._store.table(PRODUCTION_TABLES[equipment.name].name)
        parameters = {"site_id": request.site_id, "id": request.id, "start": window.start, "end": window.end}
        with self._store.client() as client:
            if window.period_ms is not None and window.bucket_count() > limit:
                # GROUP BY holds every bucket of the range: a year of seconds would be 31M.
                # Ending the range just after the first record of the bucket after the
                # limit keeps it to limit + 1, the last of which is cut off below.
                cut = client.raw_query(bucket_cut_sql(table, window.period_ms, limit), parameters, fmt="TabSeparatedRaw")
                if cut:
                    parameters["end"] = int(cut) + 1
            # One record more than the limit tells whether the response is partial.
            sql = production_sql(table, equipment, window, limit + 1)
            rendered = limit_array(client.raw_query(sql, parameters, fmt=JSON_ARRAY_FORMAT), limit)
            if rendered.count == 0:
                self._known_ids.check(client, table, request.site_id, request.id, f"{equipment.name} record")
            else:
                self._known_ids.add(table, request.site_id, request.id)
        next_from = None if rendered.first_left_out is None else leading_timestamp(rendered.first_left_out)
        return records_pb2.Records(results_json=rendered.results, count=rendered.count, next_from=next_from)


def register(store: Store, max_records: int) -> Registration:
    def add(server: grpc.Server) -> str:
        query_pb2_grpc.add_QueryServicer_to_server(QueryService(store, max_records), server)
        return query_pb2.DESCRIPTOR.services_by_name["Query"].full_name

    return add
