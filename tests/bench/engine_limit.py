"""The engine's own limit: the dataset inserted straight into chDB, no gateway, no gRPC.

Run by run.py as a separate process (chDB allows one engine per process and
per directory), it prints one JSON object on stdout. Same table DDL as
storecast (services.lib.store.schema), same batches, columns as Python lists with
column_oriented=True, the way storecast's ingest service inserts; the
aggregate and raw reads run storecast's own SQL (services.query.service).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import clickhouse_connect
from processes import chdb_disk_usage, memory_split, rss_bytes
from timing import repeat
from workload import (
    BUCKET_MS,
    EQUIPMENT_TYPE,
    INSERT_COLUMNS,
    WARMUP_RECORDS,
    WARMUP_SITE_ID,
    Dataset,
    insert_batches,
    insert_columns,
)

from services.lib.reads.window import Window
from services.lib.store.schema import PRODUCTION_TABLES
from services.query.sql import production_sql
from storecast.aggregations import AGGREGATIONS
from storecast.catalog import EQUIPMENT_TYPES

DATABASE = "storecast"
HOUR_MS = 3_600_000


def measure(dataset: Dataset, store: Path, runs: int, equipment_id: int) -> dict[str, object]:
    table_spec = PRODUCTION_TABLES[EQUIPMENT_TYPE]
    table = f"{DATABASE}.{table_spec.name}"
    client = clickhouse_connect.get_client(dsn=f"chdb://{store}")
    client.command(f"CREATE DATABASE IF NOT EXISTS {DATABASE}")
    for statement in table_spec.ddl(DATABASE):
        client.command(statement)

    batches = insert_batches(dataset)  # built before the clock starts, like the other clients' bodies
    warmup = insert_columns(dataset, 0, min(WARMUP_RECORDS, dataset.records), WARMUP_SITE_ID)
    client.insert(table, warmup, column_names=list(INSERT_COLUMNS), column_oriented=True)
    started = time.perf_counter()
    for batch in batches:
        client.insert(table, batch, column_names=list(INSERT_COLUMNS), column_oriented=True)
    insert_s = time.perf_counter() - started
    batch_count = len(batches)
    del batches, batch, warmup  # the client's own copy of the data, which no server holds
    # The same moment as storecast's figure: right after the last insert, before any read.
    rss_after_insert = rss_bytes(os.getpid())
    memory_after_insert = memory_split(os.getpid())

    equipment = EQUIPMENT_TYPES[EQUIPMENT_TYPE]
    # horizon 0: no retention, as storecast runs in the bench.
    parameters = {"site_id": dataset.site_id, "id": equipment_id, "start": dataset.start_ms, "end": dataset.end_ms, "horizon": 0}
    limit = dataset.seconds + 1  # storecast asks for one more row than its cap, to detect partial results
    aggregate_sql = production_sql(
        table, equipment, Window(dataset.start_ms, dataset.end_ms, AGGREGATIONS["avg"], BUCKET_MS), limit
    )
    raw_sql = production_sql(table, equipment, Window(dataset.start_ms, dataset.end_ms, None, None), limit)
    aggregate = repeat(lambda: client.raw_query(aggregate_sql, parameters, fmt="TabSeparatedRaw"), runs)
    raw = repeat(lambda: client.raw_query(raw_sql, parameters, fmt="TabSeparatedRaw"), runs)
    # The first hour: the rows of storecast's 3,600-record read (raw_by_encoding), in the same query.
    hour_end = dataset.start_ms + HOUR_MS
    hour_sql = production_sql(table, equipment, Window(dataset.start_ms, hour_end, None, None), limit)
    hour = repeat(lambda: client.raw_query(hour_sql, {**parameters, "end": hour_end}, fmt="TabSeparatedRaw"), runs)
    rss_after = rss_bytes(os.getpid())

    disk_before = chdb_disk_usage(store)
    client.command(f"OPTIMIZE TABLE {table} FINAL")
    disk_after = chdb_disk_usage(store)
    # The engine's own account of the table, to cross-check the directory walk.
    active_bytes, active_parts, rows = client.query(
        "SELECT sum(bytes_on_disk), count(), sum(rows) FROM system.parts"
        f" WHERE database = '{DATABASE}' AND table = '{table_spec.name}' AND active"
    ).result_rows[0]
    client.close()
    return {
        "insert_seconds": round(insert_s, 4),
        "insert_records_per_s": round(dataset.records / insert_s, 1),
        "batches": batch_count,
        "aggregate": aggregate.as_json(),
        "aggregate_buckets": aggregate.last.count(b"\n"),
        "raw": raw.as_json(),
        "raw_records": raw.last.count(b"\n"),
        "raw_3600": hour.as_json(),
        "raw_3600_records": hour.last.count(b"\n"),
        "rss_bytes_after_insert": rss_after_insert,
        "memory_after_insert": memory_after_insert,
        "rss_bytes_after_queries": rss_after,
        "disk_before_optimize": disk_before,
        "disk_after_optimize_final": disk_after,
        "system_parts_after_optimize": {
            "active_bytes_on_disk": int(active_bytes),
            "active_parts": int(active_parts),
            "rows": int(rows),
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--store", type=Path, required=True, help="a fresh directory for chDB")
    parser.add_argument("--site-id", type=int, required=True)
    parser.add_argument("--equipments", type=int, nargs="+", required=True)
    parser.add_argument("--start-ms", type=int, required=True)
    parser.add_argument("--seconds", type=int, required=True)
    parser.add_argument("--batch-records", type=int, required=True)
    parser.add_argument("--runs", type=int, required=True)
    parser.add_argument("--query-equipment", type=int, required=True)
    args = parser.parse_args()
    dataset = Dataset(args.site_id, tuple(args.equipments), args.start_ms, args.seconds, args.batch_records)
    result = measure(dataset, args.store, args.runs, args.query_equipment)
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()
