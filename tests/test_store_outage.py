"""The store killed and restarted under load: PUTs go on into the write-ahead log up to its cap
(then 503 with Retry-After), and every acknowledged record is in the store once it is back."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import httpx

from tests.conftest import FakeClickHouse, Pki, put, read_all, start_storecast, stop_storecast

NOW_MS = (int(time.time()) - 600) * 1000
# Room for a few dozen one-record entries, so the outage fills it within the test.
LOG_MAX_BYTES = 8192


def test_nothing_acknowledged_is_lost_while_the_store_is_down(tmp_path: Path, test_pki: Pki, site: int) -> None:
    store = FakeClickHouse(tmp_path / "store")
    store.start()
    env = {"STORECAST_STORE_URL": store.url, "STORECAST_LOG_MAX_BYTES": str(LOG_MAX_BYTES), "STORECAST_FLUSH_INTERVAL": "0.2"}
    instance = start_storecast(tmp_path, test_pki, env)
    acknowledged: dict[int, float] = {}
    refused: list[httpx.Response] = []
    stop = threading.Event()

    def writer(first: int) -> None:
        with instance.client() as client:
            n = first
            while not stop.is_set():
                response = put(client, f"/v1/{site}/production/meter", [{"timestamp": NOW_MS + n, "id": 1, "p": float(n)}])
                if response.status_code == 201:
                    acknowledged[NOW_MS + n] = float(n)
                else:
                    refused.append(response)
                    time.sleep(0.05)
                n += 4

    threads = [threading.Thread(target=writer, args=(first,)) for first in range(4)]
    try:
        for thread in threads:
            thread.start()
        time.sleep(1)
        store.kill()
        time.sleep(3)  # PUTs go on into the log, until it is full
        during = len(acknowledged)
        store.start()
        time.sleep(3)
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
        assert refused, "the log never filled"
        for response in refused:
            assert response.status_code == 503 and response.headers["retry-after"] == "1", response.text
            assert response.json()["status_code"] == 1500 and "write-ahead log" in response.json()["status_message"]
        assert len(acknowledged) > during > 0
        with instance.client() as client:
            stored = {r["timestamp"]: r["p"] for r in read_all(client, f"/v1/{site}/production/meter/1", NOW_MS, NOW_MS + 10**7)}
        assert {t: stored.get(t) for t in acknowledged} == acknowledged
    finally:
        stop.set()
        stop_storecast(instance)
        store.kill()
