"""Writers and readers at once against storecast, for a fixed time.

Each worker is a thread with its own HTTPS client (its own TLS connection).
Writers PUT fresh 1,000-record batches to an equipment id of their own;
readers GET random 1,000-record raw ranges of the ingested dataset. Every
response is checked: a non-2xx, a wrong record count or an exception is an
error.
"""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass, field

from storecast_target import Storecast
from timing import percentile
from workload import STEP_MS, Dataset, WriterBodies

RECORDS_PER_REQUEST = 1_000
# Writers' equipment ids start here, clear of the dataset's.
WRITER_ID_BASE = 10_000


@dataclass
class WorkerLog:
    latencies_ms: list[float] = field(default_factory=list)
    records: int = 0
    errors: list[str] = field(default_factory=list)


def _writer(target: Storecast, dataset: Dataset, index: int, deadline: float, log: WorkerLog) -> None:
    # Writers continue after the dataset's range, each on its own equipment id.
    bodies = WriterBodies(WRITER_ID_BASE + index, dataset.end_ms, RECORDS_PER_REQUEST, seed=index)
    with target.client() as client:
        while time.monotonic() < deadline:
            body = bodies.next_body()
            started = time.perf_counter()
            try:
                response = target.put(client, dataset.site_id, body)
            except Exception as error:  # a transport failure is an error to count, not a crash
                log.errors.append(f"PUT: {error!r}")
                continue
            log.latencies_ms.append((time.perf_counter() - started) * 1000)
            if response.status_code != 201:
                log.errors.append(f"PUT -> {response.status_code}: {response.text[:200]}")
                continue
            log.records += RECORDS_PER_REQUEST


def _reader(target: Storecast, dataset: Dataset, index: int, deadline: float, log: WorkerLog) -> None:
    chooser = random.Random(index)
    last_start = dataset.seconds - RECORDS_PER_REQUEST
    with target.client() as client:
        while time.monotonic() < deadline:
            equipment_id = chooser.choice(dataset.equipment_ids)
            start_ms = dataset.start_ms + chooser.randint(0, max(last_start, 0)) * STEP_MS
            params = {"from": start_ms, "to": start_ms + RECORDS_PER_REQUEST * STEP_MS}
            started = time.perf_counter()
            try:
                response = target.get(client, dataset.site_id, equipment_id, params)
            except Exception as error:
                log.errors.append(f"GET: {error!r}")
                continue
            log.latencies_ms.append((time.perf_counter() - started) * 1000)
            # Counting records by their leading key is enough and keeps the client's CPU off the server's cores.
            count = response.content.count(b'{"timestamp":')
            expected = min(RECORDS_PER_REQUEST, dataset.seconds)
            if response.status_code != 200 or count != expected:
                log.errors.append(f"GET -> {response.status_code}, {count} records: {response.text[:200]}")
                continue
            log.records += count


def _summary(logs: list[WorkerLog], seconds: float) -> dict[str, object]:
    latencies = [latency for log in logs for latency in log.latencies_ms]
    requests = len(latencies)
    records = sum(log.records for log in logs)
    errors = [error for log in logs for error in log.errors]
    return {
        "workers": len(logs),
        "requests": requests,
        "requests_per_s": round(requests / seconds, 2),
        "records_per_s": round(records / seconds, 1),
        "p50_ms": round(percentile(latencies, 0.50), 2),
        "p99_ms": round(percentile(latencies, 0.99), 2),
        "errors": len(errors),
        "first_errors": errors[:5],
    }


def run_mixed(target: Storecast, dataset: Dataset, seconds: float, writers: int = 4, readers: int = 4) -> dict[str, object]:
    writer_logs = [WorkerLog() for _ in range(writers)]
    reader_logs = [WorkerLog() for _ in range(readers)]
    started = time.monotonic()
    deadline = started + seconds
    threads = [
        threading.Thread(target=_writer, args=(target, dataset, i, deadline, log), name=f"writer-{i}")
        for i, log in enumerate(writer_logs)
    ] + [
        threading.Thread(target=_reader, args=(target, dataset, i, deadline, log), name=f"reader-{i}")
        for i, log in enumerate(reader_logs)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        # A request in flight at the deadline finishes; the client timeout bounds it.
        thread.join(timeout=seconds + 180)
    elapsed = time.monotonic() - started
    return {
        "seconds": round(elapsed, 2),
        "records_per_request": RECORDS_PER_REQUEST,
        "put": _summary(writer_logs, elapsed),
        "get": _summary(reader_logs, elapsed),
    }
