"""Reads by key: every stored table is keyed (site_id, id, ...)."""

from __future__ import annotations

from clickhouse_connect.driver.client import Client

from storecast.status import ApiFailure, ApiStatus

# Bound with {"site_id": ..., "id": ...} as server-side query parameters.
KEY_FILTER = "site_id = {site_id:UInt32} AND id = {id:UInt32}"


def check_id_known(client: Client, table: str, site_id: int, record_id: int, what: str) -> None:
    """1107 unless something was ever stored under this id (asked only when a read came back empty)."""
    known = client.raw_query(
        f"SELECT 1 FROM {table} WHERE {KEY_FILTER} LIMIT 1", {"site_id": site_id, "id": record_id}, fmt="TabSeparatedRaw"
    )
    if not known:
        raise ApiFailure(ApiStatus.INVALID_ID, f"no {what} of id {record_id} was ever stored for this site")
