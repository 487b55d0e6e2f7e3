"""The inventory service: which sites have data, and per site every series with its extent and count."""

from __future__ import annotations

import grpc

from services.inventory.sql import CATEGORIES, Source, inventory_sql, sites_sql
from services.lib.recent.answer import RecentReads
from services.lib.rpc.metrics import store_query
from services.lib.rpc.server import Registration
from services.lib.store.engine import Store
from services.lib.store.retention import Retention
from services.lib.store.schema import COMMITMENT_TABLE, FORECAST_TABLES, PRODUCTION_TABLES, TARIFF_TABLE
from storecast.v1 import inventory_pb2, inventory_pb2_grpc


class InventoryService(inventory_pb2_grpc.InventoryServicer):
    def __init__(self, store: Store, retention: Retention, recent: RecentReads | None = None) -> None:
        self._store = store
        self._retention = retention
        # The ingest's acknowledged records not yet stored, which an inventory counts too.
        self._recent = recent

    def ListSites(self, request: inventory_pb2.ListSitesRequest, context: grpc.ServicerContext) -> inventory_pb2.SiteList:
        self._sync()
        among = list(request.among)
        sql = sites_sql(self._sources(), among=bool(among))
        with store_query(), self._store.client() as client:
            rows = client.query(sql, {"among": among}).result_rows
        return inventory_pb2.SiteList(site_ids=[row[0] for row in rows])

    def GetSiteInventory(
        self, request: inventory_pb2.SiteInventoryRequest, context: grpc.ServicerContext
    ) -> inventory_pb2.SiteInventory:
        self._sync()
        with store_query(), self._store.client() as client:
            rows = client.query(inventory_sql(self._sources()), {"site_id": request.site_id}).result_rows
        inventory = inventory_pb2.SiteInventory(site_id=request.site_id)
        for rank, type_name, series_id, first, last, count, first_created, last_created in rows:
            inventory.series.add(
                category=CATEGORIES[rank],
                type=type_name,
                id=series_id,
                first_timestamp=first,
                last_timestamp=last,
                count=count,
                first_creation_timestamp=first_created,
                last_creation_timestamp=last_created,
            )
        return inventory

    def _sync(self) -> None:
        if self._recent is not None:
            self._recent.sync_all()

    def _sources(self) -> list[Source]:
        """Every table a series is stored in; production as far as its retention keeps records
        readable (as the query service reads them), the horizon taken now."""
        database = self._store.table
        return [
            *(
                Source(database(table.name), "production", name, False, self._retention.horizon_ms("production", name))
                for name, table in PRODUCTION_TABLES.items()
            ),
            *(Source(database(table.name), "forecast", name, True, 0) for name, table in FORECAST_TABLES.items()),
            Source(database(COMMITMENT_TABLE.name), "commitment", "", True, 0),
            Source(database(TARIFF_TABLE.name), "tariff", "", False, 0),
        ]


def register(store: Store, retention: Retention, recent: RecentReads | None = None) -> Registration:
    def add(server: grpc.aio.Server) -> str:
        inventory_pb2_grpc.add_InventoryServicer_to_server(InventoryService(store, retention, recent), server)
        return inventory_pb2.DESCRIPTOR.services_by_name["Inventory"].full_name

    return add
