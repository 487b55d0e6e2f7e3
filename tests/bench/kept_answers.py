"""Reads asked again: storecast's answers of settled reads kept in memory (services/query/answer_cache.py).

Every other storecast phase runs with STORECAST_ANSWER_CACHE_BYTES=0, so that
each timed read pays its work as VictoriaMetrics' do (its reads are made with
nocache=1). This one starts a fresh `storecast serve all` with its default
budget, PUTs the bulk dataset, and times the bulk phase's two reads of one
equipment (the 15-min average over the whole range, and its raw records): the
first read (the store's answer, then kept), and the median of the repeated ones,
with the hits and misses storecast counted meanwhile. The answers go uncompressed
(`Accept-Encoding: identity`), as the raw reads the targets compare: gzip costs a
20,000-record answer more than the rest of its path.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import httpx
from processes import free_port
from storecast_target import Storecast, body_of, range_params, start_storecast
from timing import repeat
from workload import Dataset

from storecast.env import DEFAULTS


def _cache_reads(metrics_port: int) -> dict[str, float]:
    text = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10).text
    return {k: float(v) for k, v in re.findall(r'storecast_answer_cache_reads_total\{outcome="(\w+)"\} (\S+)', text)}


def bench_kept_answers(workdir: Path, dataset: Dataset, bodies: list[bytes], runs: int) -> dict[str, Any]:
    metrics_port = free_port()
    budget = DEFAULTS["STORECAST_ANSWER_CACHE_BYTES"]
    env = {"STORECAST_ANSWER_CACHE_BYTES": budget, "STORECAST_METRICS_PORT": str(metrics_port)}
    target = start_storecast(workdir, max(100_000, dataset.seconds), env)
    result: dict[str, Any] = {"budget_bytes": int(budget)}
    equipment_id = dataset.equipment_ids[len(dataset.equipment_ids) // 2]
    try:
        with target.client() as client:
            for body in bodies:
                response = Storecast.put(client, dataset.site_id, body)
                if response.status_code != 201:
                    raise RuntimeError(f"PUT -> {response.status_code}: {response.text[:300]}")
            client.headers["Accept-Encoding"] = "identity"
            time.sleep(2)  # the maintainer's rounds done, as for the bulk phase's reads after the writes
            reads = {
                "aggregate": range_params(dataset, agg="avg", period="15m"),
                "raw": range_params(dataset),
            }
            before = _cache_reads(metrics_port)
            for name, params in reads.items():

                def read(params: dict[str, str | int] = params) -> bytes:
                    return body_of(Storecast.get(client, dataset.site_id, equipment_id, params))

                result[name] = repeat(read, runs).as_json()
            after = _cache_reads(metrics_port)
            result["cache_reads"] = {outcome: after.get(outcome, 0) - before.get(outcome, 0) for outcome in ("hit", "miss")}
    finally:
        result["exit_code"] = target.server.stop()
    return result
