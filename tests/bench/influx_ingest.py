"""storecast's InfluxDB write API (/ext/influx/write) fed the bulk phase's line-protocol bodies.

The same records, in the same 5,000-line bodies that InfluxDB's and
VictoriaMetrics' `/write` take in the bulk phase (measurement = the equipment
type, as storecast's mapping wants: docs/api/extensions.md), POSTed from one
keep-alive HTTPS client with the admin certificate to a fresh `storecast serve
all`; records/s over the bodies, after an untimed warm-up body. Issue 20's
targets compare it with InfluxDB's own `/write` and with storecast's typed
gRPC ingest in 5,000-record batches, both measured in the same run.

Before the server starts, the gateway's reader of such bodies
(gateway/influx/uniform.py) parses them alone in this process, the best of
PARSE_PASSES passes: a line-protocol body costs that more than the typed
batch it becomes, so typed / (typed + parse) bounds the ratio to the typed
ingest whatever the HTTP and TLS around it cost.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from processes import rss_bytes
from storecast_target import start_storecast
from workload import EQUIPMENT_TYPE, Dataset, line_protocol_body

from gateway.influx.uniform import uniform_batch

WARMUP_SITE_ID = 9_999
PARSE_PASSES = 5


def parse_alone(bodies: list[bytes], records: int) -> dict[str, float]:
    """The uniform reader's time for every body (millisecond precision), the best of PARSE_PASSES passes."""
    uniform_batch(bodies[0], 1, 1)  # loads pyarrow's CSV reader, as the gateway's first body does
    best = float("inf")
    for _ in range(PARSE_PASSES):
        started = time.perf_counter()
        for body in bodies:
            if uniform_batch(body, 1, 1) is None:
                raise RuntimeError("a bench body is not uniform: the gateway would take the general reader")
        best = min(best, time.perf_counter() - started)
    return {"seconds": round(best, 4), "records_per_s": round(records / best, 1)}


def bench_influx_write(workdir: Path, dataset: Dataset) -> dict[str, Any]:
    bodies = [line_protocol_body(dataset, start, stop, EQUIPMENT_TYPE) for start, stop in dataset.batch_bounds()]
    parsed = parse_alone(bodies, dataset.records)
    target = start_storecast(workdir, max_records=100_000)
    result: dict[str, Any] = {"pid": target.server.pid, "requests": len(bodies), "bytes": sum(map(len, bodies))}
    result["parse_alone"] = parsed
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
