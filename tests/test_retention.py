"""Retention (STORECAST_RETENTION): data past it is not read, and ClickHouse TTL drops it;
rollups outlive the raw records and answer long-range aggregations on their own."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from services.lib.store.retention import Retention
from services.lib.store.schema import FORECAST_TABLES, PRODUCTION_TABLES, ROLLUP_TABLES, TARIFF_TABLE
from tests.conftest import Pki, assert_error, ok, put, start_storecast, stop_storecast

DAY, HOUR = 86_400_000, 3_600_000


def test_rollups_outlive_the_records_past_their_retention(tmp_path: Path, test_pki: Pki) -> None:
    """Records written while kept for good, then read by a server keeping raw meter records one day."""
    today = int(time.time() * 1000) // HOUR * HOUR - HOUR
    old = today - 3 * DAY
    records = [{"timestamp": old + i * 60_000, "id": 1, "p": float(i)} for i in range(3)]
    records += [{"timestamp": today + i * 60_000, "id": 1, "p": float(10 + i)} for i in range(3)]
    first = start_storecast(tmp_path, test_pki)
    with first.client("admin") as admin:
        ok(put(admin, "/v1/1/production/meter", records), 201)
    stop_storecast(first)
    kept_one_day = start_storecast(tmp_path, test_pki, {"STORECAST_RETENTION": "production/meter=1"})
    try:
        with kept_one_day.client("admin") as admin:
            # Records: within the retention, as stored; past it, refused rather than answered in part.
            raw = ok(admin.get("/v1/1/production/meter/1", params={"from": today - HOUR, "to": today + HOUR}))["results"]
            assert [r["timestamp"] for r in raw] == [today, today + 60_000, today + 120_000]
            assert_error(admin.get("/v1/1/production/meter/1", params={"from": old, "to": today + HOUR}), 400, 1200, "kept")
            # Without a range, what is kept.
            assert len(ok(admin.get("/v1/1/production/meter/1"))["results"]) == 3
            # Hourly averages: the old hour from its rollup cells, today's hour as well.
            hourly: dict[str, str | int] = {"from": old, "to": today + HOUR, "agg": "avg", "period": "1h"}
            averaged = ok(admin.get("/v1/1/production/meter/1", params=hourly))["results"]
            assert [(r["timestamp"], r["p"]) for r in averaged] == [(old, 1.0), (today, 11.0)]
            # The cells hold sums and counts too (read under /ext/v1); first and last need the records.
            for agg, expected in (("sum", [3.0, 33.0]), ("count", [3, 3])):
                cells = ok(admin.get("/ext/v1/1/production/meter/1", params={**hourly, "agg": agg}))["results"]
                assert [(r["timestamp"], r["p"]) for r in cells] == [(old, expected[0]), (today, expected[1])]
            first_p = {**hourly, "agg": "first"}
            assert_error(admin.get("/ext/v1/1/production/meter/1", params=first_p), 400, 1200, "only min, max, avg, sum or count")
            # A late record past the retention is dropped, and leaves the cells it would fall in as they were.
            ok(put(admin, "/v1/1/production/meter", [{"timestamp": old + 30_000, "id": 1, "p": 100.0}]), 201)
            assert ok(admin.get("/v1/1/production/meter/1", params=hourly))["results"] == averaged
            # A period no rollup fits would need the records that are gone.
            odd: dict[str, str | int] = {"from": old, "to": today + HOUR, "agg": "avg", "period": "90s"}
            assert_error(admin.get("/v1/1/production/meter/1", params=odd), 400, 1200, "kept")
            # Within the retention any period is answered from the records.
            recent: dict[str, str | int] = {"from": today, "to": today + HOUR, "agg": "max", "period": "90s"}
            assert [r["p"] for r in ok(admin.get("/v1/1/production/meter/1", params=recent))["results"]] == [11.0, 12.0]
            # A forecast's errors count as actuals only the records still kept: the old hour has none.
            vintage = {"creation_timestamp": old - HOUR, "id": 1, "values": [{"timestamp": t, "p": 0.0} for t in (old, today)]}
            ok(put(admin, "/v1/1/forecast/solar", [vintage]), 201)
            against: dict[str, str | int] = {
                "equipment": "meter",
                "equipment_id": 1,
                "attribute": "p",
                "period": "1h",
                "horizon_bucket": "1d",
            }
            errors = ok(admin.get("/ext/v1/1/forecast/solar/1/horizon-errors", params=against))["results"]
            assert errors == [{"horizon_ms": 3 * DAY, "count": 1, "mae": 11.0, "bias": -11.0}]
    finally:
        stop_storecast(kept_one_day)
    assert kept_one_day.process.returncode == 0, kept_one_day.log.read_text()


def test_the_schema_carries_the_retention_as_ttl() -> None:
    retention = Retention.parse("production=400,production/meter=90,rollup=3650,forecast/solar=30,tariff=7")
    create, *_, modify = PRODUCTION_TABLES["meter"].ddl("db", retention=retention)
    assert "TTL toDateTime(least(intDiv(`timestamp`, 1000), 4294967295)) + INTERVAL 90 DAY DELETE" in create
    assert modify.startswith("ALTER TABLE db.production_meter MODIFY TTL") and "materialize_ttl_after_modify = 0" in modify
    assert "INTERVAL 400 DAY" in PRODUCTION_TABLES["battery"].ddl("db", retention=retention)[0]
    assert "intDiv(`bucket`, 1000), 4294967295)) + INTERVAL 3650 DAY" in ROLLUP_TABLES["meter"].ddl("db", retention=retention)[0]
    assert (
        "intDiv(`creation_timestamp`, 1000), 4294967295)) + INTERVAL 30 DAY"
        in FORECAST_TABLES["solar"].ddl("db", retention=retention)[0]
    )
    assert "TTL" not in FORECAST_TABLES["wind"].ddl("db", retention=retention)[0]
    assert "INTERVAL 7 DAY" in TARIFF_TABLE.ddl("db", retention=retention)[0]
    cluster = PRODUCTION_TABLES["meter"].ddl("db", "main", retention)
    assert "TTL" in cluster[0] and cluster[-1].startswith("ALTER TABLE db.production_meter_local ON CLUSTER 'main' MODIFY TTL")


@pytest.mark.parametrize("setting", ["production/kettle=3", "stock=3", "production=0", "production=a week"])
def test_a_retention_setting_that_means_nothing_is_refused(setting: str) -> None:
    with pytest.raises(ValueError, match="STORECAST_RETENTION"):
        Retention.parse(setting)


def test_a_server_with_a_bad_retention_does_not_start(tmp_path: Path, test_pki: Pki) -> None:
    with pytest.raises(RuntimeError, match="unknown key 'production/kettle'"):
        start_storecast(tmp_path, test_pki, {"STORECAST_RETENTION": "production/kettle=3"})
