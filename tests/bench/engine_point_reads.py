"""The engine's own point-read limit: storecast's 1-record read, straight on chDB, no gateway, no gRPC.

Run by fleet.py as a separate process (chDB allows one engine per process
and per directory); it prints one JSON object on stdout. The table has
storecast's production layout (services.lib.store.schema) and the fleet's seed
rows; each read is storecast's own raw-record SQL (services.query.service)
over a [t, t + 1 s[ range holding exactly one record, with FINAL. Queries
go through `client.raw_query` without per-call `settings=`: on the chDB
backend those cost extra engine calls per query (see NOTES.md).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import clickhouse_connect
from clickhouse_connect.driver.client import Client
from timing import rate_summary
from workload import EQUIPMENT_TYPE, INSERT_COLUMNS, STEP_MS, Dataset, insert_batches

from services.lib.reads.window import Window
from services.lib.store.schema import PRODUCTION_TABLES
from services.query.sql import production_sql
from storecast.catalog import EQUIPMENT_TYPES

DATABASE = "storecast"
# storecast asks for max_records + 1 rows; the value does not matter for a 1-record range.
LIMIT = 100_001
# Active part count unchanged this long means the background merges after the seed are done.
SETTLE_QUIET_S = 3.0
SETTLE_TIMEOUT_S = 60.0
TARGETS_PER_CLIENT = 1_000
# Each read checks this attribute of the one record it gets back.
PRODUCTION_ATTRIBUTE = EQUIPMENT_TYPES[EQUIPMENT_TYPE].attributes[0].name


@dataclass
class ReaderLog:
    latencies_ms: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    started: float = 0.0
    finished: float = 0.0


@dataclass(frozen=True)
class PointRead:
    sql: str
    attribute: str

    def check(self, body: bytes, expected: float) -> str | None:
        """None when the body is exactly one record holding the expected value, else what is wrong."""
        lines = body.splitlines()
        if len(lines) != 1:
            return f"{len(lines)} rows"
        value = json.loads(lines[0]).get(self.attribute)
        return None if value is not None and float(value) == expected else f"{self.attribute}={value!r}, expected {expected!r}"


def connect(store: Path) -> Client:
    return clickhouse_connect.get_client(dsn=f"chdb://{store}")


def load(client: Client, dataset: Dataset) -> str:
    """Create storecast's table and insert the seed rows in the fleet's batches; the table's name."""
    table_spec = PRODUCTION_TABLES[EQUIPMENT_TYPE]
    client.command(f"CREATE DATABASE IF NOT EXISTS {DATABASE}")
    for statement in table_spec.ddl(DATABASE):
        client.command(statement)
    table = f"{DATABASE}.{table_spec.name}"
    for batch in insert_batches(dataset):
        client.insert(table, batch, column_names=list(INSERT_COLUMNS), column_oriented=True)
    return table


def _count(client: Client, sql: str) -> int:
    """The one value a `SELECT count()` answers."""
    value = client.command(sql)
    if not isinstance(value, int | str):  # command() answers a single value as it is, or its text
        raise RuntimeError(f"{sql} answered {value!r}, not one value")
    return int(value)


def settle(client: Client, table: str) -> int:
    """Wait for the merges the seed started, as the fleet does for storecast; the active parts left."""
    name = table.split(".", 1)[1]
    sql = f"SELECT count() FROM system.parts WHERE database = '{DATABASE}' AND table = '{name}' AND active"
    deadline = time.monotonic() + SETTLE_TIMEOUT_S
    parts, since = _count(client, sql), time.monotonic()
    while time.monotonic() < deadline and time.monotonic() - since < SETTLE_QUIET_S:
        time.sleep(0.5)
        current = _count(client, sql)
        if current != parts:
            parts, since = current, time.monotonic()
    return parts


def targets(dataset: Dataset, seed: int, count: int = TARGETS_PER_CLIENT) -> list[tuple[dict[str, int], float]]:
    """Random stored records: the query parameters of a 1-second range around each, and its first attribute."""
    chooser = random.Random(seed)
    attribute = dataset.columns[PRODUCTION_ATTRIBUTE]
    chosen = []
    for _ in range(count):
        index = chooser.randrange(dataset.records)
        timestamp = int(dataset.columns["timestamp"][index])
        parameters = {
            "site_id": dataset.site_id,
            "id": int(dataset.columns["id"][index]),
            "start": timestamp,
            "end": timestamp + STEP_MS,
            "horizon": 0,  # no retention, as storecast runs in the bench
        }
        chosen.append((parameters, float(attribute[index])))
    return chosen


def read_loop(
    client: Client, read: PointRead, chosen: list[tuple[dict[str, int], float]], seconds: float, log: ReaderLog
) -> None:
    log.started = time.monotonic()
    deadline = log.started + seconds
    index = 0
    while time.monotonic() < deadline:
        parameters, expected = chosen[index % len(chosen)]
        index += 1
        started = time.perf_counter()
        try:
            body = client.raw_query(read.sql, parameters, fmt="TabSeparated")
        except Exception as error:  # an engine error is a failed read to count, not a crash
            log.errors.append(repr(error)[:300])
            continue
        log.latencies_ms.append((time.perf_counter() - started) * 1000)
        problem = read.check(body, expected)
        if problem is not None:
            log.errors.append(problem)
    log.finished = time.monotonic()


def summary(logs: list[ReaderLog]) -> dict[str, object]:
    latencies = [latency for log in logs for latency in log.latencies_ms]
    errors = [error for log in logs for error in log.errors]
    elapsed = max(log.finished for log in logs) - min(log.started for log in logs)
    return rate_summary(len(logs), elapsed, latencies, len(latencies) - len(errors), len(errors), errors)


def read_phase(store: Path, read: PointRead, dataset: Dataset, clients: int, seconds: float) -> dict[str, object]:
    """`clients` threads, each with its own client on the one shared engine, reading for `seconds`."""
    connections = [connect(store) for _ in range(clients)]
    plans = [targets(dataset, seed=index) for index in range(clients)]
    for connection, chosen in zip(connections, plans):
        connection.raw_query(read.sql, chosen[0][0], fmt="TabSeparated")  # untimed: the first query's one-off costs
    logs = [ReaderLog() for _ in range(clients)]
    threads = [
        threading.Thread(target=read_loop, args=(connection, read, chosen, seconds, log), name=f"reader-{index}")
        for index, (connection, chosen, log) in enumerate(zip(connections, plans, logs))
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for connection in connections:
        connection.close()
    return summary(logs)


def measure(store: Path, dataset: Dataset, clients: int, seconds: float) -> dict[str, object]:
    client = connect(store)
    started = time.perf_counter()
    table = load(client, dataset)
    load_s = time.perf_counter() - started
    active_parts = settle(client, table)
    equipment = EQUIPMENT_TYPES[EQUIPMENT_TYPE]
    read = PointRead(production_sql(table, equipment, Window(0, 1, None, None), LIMIT), PRODUCTION_ATTRIBUTE)
    single = read_phase(store, read, dataset, 1, seconds)
    many = read_phase(store, read, dataset, clients, seconds)
    client.close()
    return {
        "rows": dataset.records,
        "load_seconds": round(load_s, 2),
        "active_parts_before_reads": active_parts,
        "query": "storecast's raw-record SQL (production_sql) over [t, t + 1 s[, FINAL, raw_query fmt=TabSeparated, no settings=",
        "single_get": single,
        "get": many,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--store", type=Path, required=True, help="a fresh directory for chDB")
    parser.add_argument("--site-id", type=int, required=True)
    parser.add_argument("--equipments", type=int, nargs="+", required=True)
    parser.add_argument("--start-ms", type=int, required=True)
    parser.add_argument("--seconds-of-data", type=int, required=True)
    parser.add_argument("--clients", type=int, required=True)
    parser.add_argument("--seconds", type=float, required=True, help="length of each read phase")
    args = parser.parse_args()
    dataset = Dataset(args.site_id, tuple(args.equipments), args.start_ms, args.seconds_of_data)
    json.dump(measure(args.store, dataset, args.clients, args.seconds), sys.stdout)


if __name__ == "__main__":
    main()
