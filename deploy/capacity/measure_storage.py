"""Bytes per meter-3p record: in the PUT body, in the Native block sent to
ClickHouse, and on disk after merges, measured on the embedded engine through
the ingest service's own insert path. The figures feed deploy/README.md.

    .venv/bin/python deploy/capacity/measure_storage.py [--sites 20] [--equipments 50] [--seconds 1800]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time

import numpy as np

from services.ingest.service import IngestService
from services.lib.records.group_commit import BatchSettings
from services.lib.store.engine import Store
from services.lib.store.retention import Retention
from services.lib.store.schema import PRODUCTION_TABLES, ROLLUP_TABLES
from storecast.catalog import EQUIPMENT_TYPES
from storecast.v1 import catalog_pb2, ingest_pb2

T0 = 1_767_225_600_000  # 2026-01-01


def telemetry(rng: np.random.Generator, seconds: int) -> dict[str, np.ndarray]:
    """One equipment's hour-scale drift plus sensor noise, at the resolution meters report."""

    def walk(start: float, step: float, noise: float, decimals: int) -> np.ndarray:
        return np.round(start + np.cumsum(rng.normal(0, step, seconds)) + rng.normal(0, noise, seconds), decimals)

    columns = {}
    for phase in ("l1", "l2", "l3"):
        columns[f"{phase}_p"] = walk(rng.uniform(5, 400), 0.5, 0.2, 2)
        columns[f"{phase}_q"] = walk(rng.uniform(-50, 50), 0.2, 0.1, 2)
        columns[f"{phase}_i"] = walk(rng.uniform(5, 200), 0.2, 0.05, 2)
    for pair in ("l12", "l23", "l31"):
        columns[f"{pair}_u"] = walk(400.0, 0.02, 0.3, 1)
    columns["f"] = walk(50.0, 0.0005, 0.005, 3)
    return columns


def bodies(rng: np.random.Generator, equipments: int, seconds: int, per_put: int) -> list[bytes]:
    """One site's PUT bodies: every equipment's records, `per_put` seconds at a time."""
    names = [a.name for a in EQUIPMENT_TYPES["meter-3p"].attributes]
    series = [telemetry(rng, seconds) for _ in range(equipments)]
    out = []
    for start in range(0, seconds, per_put):
        values = [
            {"timestamp": T0 + 1000 * s, "id": equipment, **{name: float(columns[name][s]) for name in names}}
            for equipment, columns in enumerate(series, start=1)
            for s in range(start, min(start + per_put, seconds))
        ]
        out.append(json.dumps({"values": values}, separators=(",", ":")).encode())
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sites", type=int, default=20)
    parser.add_argument("--equipments", type=int, default=50)
    parser.add_argument("--seconds", type=int, default=1800)
    parser.add_argument("--per-put", type=int, default=60, help="seconds of data per PUT")
    args = parser.parse_args()
    rng = np.random.default_rng(5)
    with tempfile.TemporaryDirectory() as directory:
        store = Store(f"chdb://{directory}", pool_size=1)
        table = PRODUCTION_TABLES["meter-3p"]
        for layout in (table, ROLLUP_TABLES["meter-3p"]):
            store.apply(layout.ddl(store.database))
        service = IngestService(store, BatchSettings(), Retention())
        body_bytes = rows = 0
        elapsed = 0.0
        for site in range(1, args.sites + 1):
            for body in bodies(rng, args.equipments, args.seconds, args.per_put):
                request = ingest_pb2.PutProductionRequest(site_id=site, equipment_type=catalog_pb2.METER_3P, v1_json=body)
                started = time.perf_counter()
                rows += asyncio.run(service.PutProduction(request, None)).stored  # type: ignore[arg-type]
                elapsed += time.perf_counter() - started
                body_bytes += len(body)
        with store.client() as client:
            client.command(f"OPTIMIZE TABLE {store.table(table.name)} FINAL")
            on_disk, uncompressed, stored = client.query(
                "SELECT sum(bytes_on_disk), sum(data_uncompressed_bytes), sum(rows) FROM system.parts"
                " WHERE database = {db:String} AND table = {t:String} AND active",
                parameters={"db": store.database, "t": table.name},
            ).result_rows[0]
        store.close()
    assert stored == rows
    print(
        json.dumps(
            {
                "rows": rows,
                "json_bytes_per_record": round(body_bytes / rows, 1),
                "uncompressed_bytes_per_record": round(uncompressed / rows, 1),
                "disk_bytes_per_record": round(on_disk / rows, 2),
                "ingest_records_per_s_one_thread": round(rows / elapsed),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
