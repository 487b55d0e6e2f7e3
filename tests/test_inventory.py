"""The gRPC Inventory service, over data stored through the REST API: which sites hold data,
and per site every series with its first and last timestamp and its count."""

from __future__ import annotations

import grpc
import httpx
import pytest

from storecast.v1 import inventory_pb2, inventory_pb2_grpc
from tests.conftest import ok, put
from tests.helpers import HOUR, MINUTE, T0

DAY = 24 * HOUR


@pytest.fixture
def inventory(grpc_channel: grpc.Channel) -> inventory_pb2_grpc.InventoryStub:
    return inventory_pb2_grpc.InventoryStub(grpc_channel)


def stored(response: httpx.Response) -> None:
    ok(response, 201)


def series_of(inventory: inventory_pb2_grpc.InventoryStub, site: int) -> list[tuple[object, ...]]:
    reply = inventory.GetSiteInventory(inventory_pb2.SiteInventoryRequest(site_id=site), timeout=30)
    assert reply.site_id == site
    return [
        (
            s.category,
            s.type,
            s.id,
            s.first_timestamp,
            s.last_timestamp,
            s.count,
            s.first_creation_timestamp if s.HasField("first_creation_timestamp") else None,
            s.last_creation_timestamp if s.HasField("last_creation_timestamp") else None,
        )
        for s in reply.series
    ]


def forecast_vector(created: int, vector_id: int, starts: int, periods: int, p: float) -> dict[str, object]:
    return {
        "creation_timestamp": created,
        "id": vector_id,
        "values": [{"timestamp": starts + i * HOUR, "p": p + i} for i in range(periods)],
    }


def test_every_series_of_a_site_with_its_extent_and_count(
    admin: httpx.Client, inventory: inventory_pb2_grpc.InventoryStub, site: int
) -> None:
    meter = f"/v1/{site}/production/meter"
    stored(put(admin, meter, [{"timestamp": T0 + i * MINUTE, "id": 3, "p": float(i)} for i in range(5)]))
    # Two of them again (one part more: the engine holds both versions until it merges), and one new.
    stored(put(admin, meter, [{"timestamp": T0 + i * MINUTE, "id": 3, "p": 10.0 + i} for i in (1, 4, 7)]))
    stored(put(admin, meter, [{"timestamp": T0 - DAY, "id": 1, "p": 1.0}]))
    stored(put(admin, f"/v1/{site}/production/meter-3p", [{"timestamp": T0, "id": 2, "l1_p": 1.0}]))

    solar = f"/v1/{site}/forecast/solar"
    stored(put(admin, solar, [forecast_vector(T0 - DAY, 1, T0, 24, 1.0), forecast_vector(T0 - 6 * HOUR, 1, T0 + HOUR, 24, 2.0)]))
    # A vintage stored again replaces the vector: still two vintages, its periods now from T0 + 2h to T0 + 5h.
    stored(put(admin, solar, [forecast_vector(T0 - 6 * HOUR, 1, T0 + 2 * HOUR, 4, 3.0)]))
    stored(put(admin, f"/v1/{site}/forecast/demand", [forecast_vector(T0, 4, T0, 2, 1.0)]))

    commitment = {"creation_timestamp": T0 - HOUR, "id": 5, "quality": 1, "values": [{"timestamp": T0, "value": 1.0}]}
    stored(put(admin, f"/v1/{site}/commitment", [commitment]))
    stored(put(admin, f"/v1/{site}/commitment", [{**commitment, "creation_timestamp": T0}]))

    tariff = f"/v1/{site}/tariff"
    periods = [{"timestamp": T0 + i * 8 * HOUR, "label": "off-peak" if i % 2 else "on-peak", "value": 0.1} for i in range(3)]
    stored(put(admin, tariff, [{"id": 2, "values": periods}]))
    stored(put(admin, tariff, [{"id": 2, "values": [{"timestamp": T0 + 8 * HOUR, "label": "peak", "value": 0.3}]}]))

    assert series_of(inventory, site) == [
        ("production", "meter", 1, T0 - DAY, T0 - DAY, 1, None, None),
        ("production", "meter", 3, T0, T0 + 7 * MINUTE, 6, None, None),
        ("production", "meter-3p", 2, T0, T0, 1, None, None),
        ("forecast", "demand", 4, T0, T0 + HOUR, 1, T0, T0),
        ("forecast", "solar", 1, T0, T0 + 23 * HOUR, 2, T0 - DAY, T0 - 6 * HOUR),
        ("commitment", "", 5, T0, T0, 2, T0 - HOUR, T0),
        ("tariff", "", 2, T0, T0 + 16 * HOUR, 3, None, None),
    ]


def test_replacements_are_counted_once_however_often_they_come(
    admin: httpx.Client, inventory: inventory_pb2_grpc.InventoryStub, site: int
) -> None:
    records = [{"timestamp": T0 + i * 1000, "id": 1, "p": 1.0} for i in range(100)]
    for _ in range(4):
        stored(put(admin, f"/v1/{site}/production/meter", records))
        stored(put(admin, f"/v1/{site}/forecast/wind", [forecast_vector(T0, 9, T0, 3, 1.0)]))
    assert series_of(inventory, site) == [
        ("production", "meter", 1, T0, T0 + 99_000, 100, None, None),
        ("forecast", "wind", 9, T0, T0 + 2 * HOUR, 1, T0, T0),
    ]


def test_a_site_with_nothing_stored_has_an_empty_inventory(inventory: inventory_pb2_grpc.InventoryStub, site: int) -> None:
    assert series_of(inventory, site) == []


def test_sites_are_those_with_anything_stored(
    admin: httpx.Client, inventory: inventory_pb2_grpc.InventoryStub, site: int
) -> None:
    empty, tariff_only, production_only = site, site + 1_000_000, site + 2_000_000
    stored(put(admin, f"/v1/{tariff_only}/tariff", [{"id": 1, "values": [{"timestamp": T0, "label": "x", "value": 1.0}]}]))
    stored(put(admin, f"/v1/{production_only}/production/status", [{"timestamp": T0, "id": 1}]))

    among = inventory.ListSites(inventory_pb2.ListSitesRequest(among=[production_only, empty, tariff_only]), timeout=30)
    assert list(among.site_ids) == [tariff_only, production_only]

    every = list(inventory.ListSites(inventory_pb2.ListSitesRequest(), timeout=30).site_ids)
    assert every == sorted(set(every))
    assert {tariff_only, production_only} <= set(every) and empty not in every
