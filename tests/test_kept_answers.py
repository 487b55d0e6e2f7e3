"""Answers of settled reads kept in memory, through the gateway: a read asked again is answered
without the store, and never once a write changed its range (services/query/answer_cache.py)."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import Pki, Storecast, ok, put, start_observed, start_storecast, stop_storecast

# Two days ago: out of the hot tier's window, so every read goes to the store.
OLD_MS = (int(time.time()) // 3600 - 48) * 3_600_000
RANGE = {"from": OLD_MS, "to": OLD_MS + 600_000}


def _cache_reads(metrics_port: int) -> dict[str, float]:
    text = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10).text
    found = re.findall(r'storecast_answer_cache_reads_total\{outcome="(\w+)"\} (\S+)', text)
    return {outcome: float(value) for outcome, value in found}


@pytest.fixture(scope="module")
def instance(tmp_path_factory: pytest.TempPathFactory, test_pki: Pki) -> Iterator[tuple[Storecast, int]]:
    started, metrics_port = start_observed(tmp_path_factory.mktemp("kept"), test_pki)
    yield started, metrics_port
    stop_storecast(started)


def test_a_read_asked_again_is_kept_until_a_write_changes_its_range(instance: tuple[Storecast, int], site: int) -> None:
    storecast, metrics_port = instance
    path = f"/v1/{site}/production/meter"
    reads = [{}, {"agg": "avg", "period": "1m"}, {"agg": "max", "period": "5m"}]
    with storecast.client() as client:
        records = [{"timestamp": OLD_MS + n * 1000, "id": 1, "p": float(n)} for n in range(600)]
        ok(put(client, path, records), 201)

        def answers() -> list[bytes]:
            return [client.get(f"{path}/1", params={**RANGE, **extra}).content for extra in reads]

        before = _cache_reads(metrics_port)
        first = answers()
        assert answers() == first
        after = _cache_reads(metrics_port)
        assert after["miss"] - before.get("miss", 0) == len(reads)
        assert after["hit"] - before.get("hit", 0) == len(reads)

        # Writes outside the range, or to another id, change none of its answers.
        ok(put(client, path, [{"timestamp": OLD_MS + 600_000, "id": 1, "p": -1.0}]), 201)
        ok(put(client, path, [{"timestamp": OLD_MS + 30_000, "id": 2, "p": 1000.0}]), 201)
        assert answers() == first
        assert _cache_reads(metrics_port)["hit"] - after["hit"] == len(reads)

        # A record replaced within it changes every one.
        ok(put(client, path, [{"timestamp": OLD_MS + 30_000, "id": 1, "p": 1000.0}]), 201)
        raw, averages, maxima = answers()
        assert [r["p"] for r in ok_body(raw)][29:32] == [29.0, 1000.0, 31.0]
        assert ok_body(averages)[0]["p"] == pytest.approx((sum(range(60)) - 30 + 1000) / 60)
        assert ok_body(maxima)[0]["p"] == 1000.0
        assert answers() == [raw, averages, maxima]


def ok_body(content: bytes) -> list[dict[str, float]]:
    body = httpx.Response(200, content=content).json()
    assert body["status_code"] == 1000, body
    results: list[dict[str, float]] = body["results"]
    return results


@pytest.mark.parametrize("log", ["1", "0"])
def test_reads_racing_writes_never_keep_a_stale_answer(tmp_path_factory: pytest.TempPathFactory, test_pki: Pki, log: str) -> None:
    """Replacements of records in the range while reads of it run: once the writes end, the answer
    is the last acknowledged values (STORECAST_LOG=0: each PUT waits for its insert)."""
    storecast = start_storecast(tmp_path_factory.mktemp(f"racing{log}"), test_pki, {"STORECAST_LOG": log})
    path = "/v1/7/production/meter"
    latest = {n: float(n) for n in range(60)}
    writing = threading.Event()
    writing.set()
    try:
        with storecast.client() as client:
            ok(put(client, path, [{"timestamp": OLD_MS + n * 1000, "id": 1, "p": p} for n, p in latest.items()]), 201)

            def reader() -> None:
                with storecast.client() as reading:
                    while writing.is_set():
                        ok(reading.get(f"{path}/1", params={**RANGE}))
                        ok(reading.get(f"{path}/1", params={**RANGE, "agg": "max", "period": "1m"}))

            threads = [threading.Thread(target=reader) for _ in range(2)]
            for thread in threads:
                thread.start()
            try:
                for n in range(60, 400):
                    second = n * 7 % 60
                    ok(put(client, path, [{"timestamp": OLD_MS + second * 1000, "id": 1, "p": float(n)}]), 201)
                    latest[second] = float(n)
            finally:
                writing.clear()
                for thread in threads:
                    thread.join()
            raw = ok(client.get(f"{path}/1", params={**RANGE}))["results"]
            assert [r["p"] for r in raw] == [latest[n] for n in range(60)]
            maxima = ok(client.get(f"{path}/1", params={**RANGE, "agg": "max", "period": "1m"}))["results"]
            assert [r["p"] for r in maxima] == [max(latest.values())]
    finally:
        stop_storecast(storecast)
