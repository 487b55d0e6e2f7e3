"""storecast's InfluxDB write API (/ext/influx/write) fed the bulk phase's line-protocol bodies.

The same records, in the same 5,000-line bodies that InfluxDB's and
VictoriaMetrics' `/write` take in the bulk phase (measurement = the equipment
type, as storecast's mapping wants: docs/api/extensions.md), POSTed from one
keep-alive HTTPS client with the admin certificate to a fresh `storecast serve
all`; records/s over the bodies, after an untimed warm-up body. Issue 20's
targets compare it with InfluxDB's own `/write` and with storecast's typed
gRPC ingest in 5,000-record batches, both measured in the same run.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from processes import rss_bytes
from storecast_target import start_storecast
from workload import EQUIPMENT_TYPE, Dataset, line_protocol_body

WARMUP_SITE_ID = 9_999


def bench_influx_write(workdir: Path, dataset: Dataset) -> dict[str, Any]:
    bodies = [line_protocol_body(dataset, start, stop, EQUIPMENT_TYPE) for start, stop in dataset.batch_bounds()]
    target = start_storecast(workdir, max_records=100_000)
    result: dict[str, Any] = {"pid": target.server.pid, "requests": len(bodies), "bytes": sum(map(len, bodies))}
    try:
        with target.client() as client:

            def write(site_id: int, body: bytes) -> None:
                response = client.post("/ext/influx/write", params={"db": site_id, "precision": "ms"}, content=body)
                if response.status_code != 204:
                    raise RuntimeError(f"POST /ext/influx/write -> {response.status_code}: {response.text[:300]}")

            write(WARMUP_SITE_ID, bodies[0])  # opens the connection, pays the first insert's one-off costs
            started = time.perf_counter()
            for body in bodies:
                write(dataset.site_id, body)
            seconds = time.perf_counter() - started
            result["ingest"] = {"seconds": round(seconds, 3), "records_per_s": round(dataset.records / seconds, 1)}
            result["rss_bytes_after_ingest"] = rss_bytes(target.server.pid)
    finally:
        result["exit_code"] = target.server.stop()
    return result
