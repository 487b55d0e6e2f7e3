"""Memory under concurrent large PUTs: PUTS bodies of about the default body limit sent at once,
each on its own connection, against storecast with its default budgets.

The in-flight budget (256 MiB) admits some and refuses the rest with 503; the
process tree's RSS (services and gateway workers) is sampled throughout. The
figure is the peak's growth over the RSS before, against the bytes admitted
(issue 22's target: at most 3 times). Every admitted PUT must be stored whole.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from processes import rss_bytes, vm_rss_bytes
from storecast_target import Storecast
from workload import Dataset, json_body

PUTS = 12
BODY_BYTES = 31 * 2**20
# Sites of their own, clear of every other phase's.
SITE_BASE = 9_000
SAMPLE_S = 0.02


def run(target: Storecast, dataset: Dataset) -> dict[str, Any]:
    records = _records_within(dataset, BODY_BYTES)
    body = json_body(dataset, 0, records)
    pid = target.server.pid
    baseline, services_baseline = rss_bytes(pid), vm_rss_bytes(pid)
    peak, services_peak = baseline, services_baseline
    done = threading.Event()

    def sample() -> None:
        nonlocal peak, services_peak
        while not done.is_set():
            peak, services_peak = max(peak, rss_bytes(pid)), max(services_peak, vm_rss_bytes(pid))
            time.sleep(SAMPLE_S)

    def put(index: int) -> tuple[int, float]:
        with target.client() as client:
            started = time.perf_counter()
            response = Storecast.put(client, SITE_BASE + index, body)
            return response.status_code, time.perf_counter() - started

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        with ThreadPoolExecutor(PUTS) as pool:
            answers = list(pool.map(put, range(PUTS)))
    finally:
        done.set()
        sampler.join()
    admitted = [index for index, (status, _) in enumerate(answers) if status == 201]
    refused = [index for index, (status, _) in enumerate(answers) if status == 503]
    others = sorted({status for status, _ in answers} - {201, 503})
    stored = sum(_stored(target, SITE_BASE + index) == records for index in admitted)
    growth = peak - baseline
    return {
        "puts": PUTS,
        "body_bytes": len(body),
        "records_per_body": records,
        "admitted": len(admitted),
        "refused": len(refused),
        "other_statuses": others,
        "admitted_stored_whole": stored,
        "rss_before_mib": round(baseline / 2**20, 1),
        "rss_peak_mib": round(peak / 2**20, 1),
        # `serve all`'s own process, where the services and the engine run (the rest: gateway workers).
        "services_growth_mib": round((services_peak - services_baseline) / 2**20, 1),
        "growth_per_admitted_byte": round(growth / (len(admitted) * len(body)), 2) if admitted else None,
        "slowest_refusal_s": round(max((answers[i][1] for i in refused), default=0.0), 3),
    }


def _records_within(dataset: Dataset, size: int) -> int:
    """The most records of the dataset from its first whose body is at most `size` bytes."""
    sample = 1_000
    per_record = len(json_body(dataset, 0, sample)) / sample
    records = min(int(size / per_record), dataset.records)
    while len(json_body(dataset, 0, records)) > size:
        records -= sample
    return records


def _stored(target: Storecast, site_id: int) -> int:
    """The production records stored at `site_id` (/ext/v1's inventory)."""
    with target.client() as client:
        response = client.get(f"/ext/v1/{site_id}/inventory")
    if response.status_code != 200:
        raise RuntimeError(f"inventory of site {site_id} -> {response.status_code}: {response.text[:200]}")
    return sum(int(series["count"]) for series in response.json()["results"] if series["category"] == "production")
