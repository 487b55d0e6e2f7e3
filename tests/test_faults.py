"""Faults: the process holding the store killed mid-write, SIGTERM with requests in flight."""

from __future__ import annotations

import json
import signal
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx

from tests.conftest import Pki, Storecast, read_all, start_storecast, stop_storecast
from tests.helpers import raw_put

# This module's own epoch, apart from the shared tests.helpers.T0: the timestamps its data was first written with.
FAULTS_T0 = 1_600_000_000_000
BATCH = 200


def writer(
    storecast: Storecast, equipment_id: int, acknowledged: list[int], latencies: list[float], stop: threading.Event
) -> None:
    """PUTs batches of distinct records until stopped; remembers the batches answered 201."""
    batch = 0
    with storecast.client("admin") as client:
        while not stop.is_set():
            values = [
                {"timestamp": FAULTS_T0 + (batch * BATCH + i) * 1000, "id": equipment_id, "value": float(batch)}
                for i in range(BATCH)
            ]
            started = time.monotonic()
            try:
                response = client.put("/v1/1/production/metric", json={"values": values})
            except httpx.TransportError:
                response = None
            latencies.append(time.monotonic() - started)
            if response is not None and response.status_code == 201:
                acknowledged.append(batch)
            elif response is not None:
                assert response.status_code == 500 and response.json()["status_code"] == 1500, response.text
            batch += 1


def test_every_acknowledged_record_survives_kill_9(tmp_path: Path, test_pki: Pki) -> None:
    storecast = start_storecast(tmp_path, test_pki, {"STORECAST_GRPC_TIMEOUT_S": "10"})
    stop = threading.Event()
    acknowledged: dict[int, list[int]] = {1: [], 2: []}
    latencies: list[float] = []
    threads = [threading.Thread(target=writer, args=(storecast, i, acknowledged[i], latencies, stop)) for i in acknowledged]
    for thread in threads:
        thread.start()
    time.sleep(2.0)
    storecast.process.send_signal(signal.SIGKILL)
    storecast.process.wait(timeout=30)
    time.sleep(0.5)
    stop.set()
    for thread in threads:
        thread.join(timeout=60)
        assert not thread.is_alive(), "a client hung on a dead server"
    assert all(len(batches) > 2 for batches in acknowledged.values()), acknowledged
    assert max(latencies) < 10 + 5, "a request outlived the gateway's gRPC deadline"

    restarted = start_storecast(tmp_path, test_pki)
    try:
        with restarted.client("admin") as client:
            for equipment_id, batches in acknowledged.items():
                stored = read_all(client, f"/v1/1/production/metric/{equipment_id}", FAULTS_T0, FAULTS_T0 + 10**10)
                per_batch = Counter(int(record["value"]) for record in stored)
                # Every acknowledged batch whole; the one in flight at the kill whole or absent.
                assert all(per_batch[batch] == BATCH for batch in batches), (equipment_id, per_batch)
                assert set(per_batch.values()) == {BATCH}, per_batch
                for record in stored:
                    assert (record["timestamp"] - FAULTS_T0) // 1000 // BATCH == record["value"], record
    finally:
        stop_storecast(restarted)


def test_sigterm_lets_the_request_in_flight_finish(tmp_path: Path, test_pki: Pki) -> None:
    storecast = start_storecast(tmp_path, test_pki)
    values = [{"timestamp": FAULTS_T0 + i, "id": 1, "value": float(i)} for i in range(20_000)]
    body = json.dumps({"values": values}).encode()
    half = len(body) // 2

    def slow_body() -> Iterator[bytes]:
        yield body[:half]
        # The request is in flight: headers and half the body are in.
        storecast.process.send_signal(signal.SIGTERM)
        time.sleep(1.0)
        yield body[half:]

    with storecast.client("admin") as client:
        response = raw_put(client, "/v1/1/production/metric", slow_body())
    assert response.status_code == 201, response.text
    assert storecast.process.wait(timeout=60) == 0
    restarted = start_storecast(tmp_path, test_pki)
    try:
        with restarted.client("admin") as client:
            assert len(read_all(client, "/v1/1/production/metric/1", FAULTS_T0, FAULTS_T0 + 20_000)) == 20_000
    finally:
        stop_storecast(restarted)


def test_a_body_sent_too_slowly_is_refused_and_frees_the_worker(tmp_path: Path, test_pki: Pki) -> None:
    storecast = start_storecast(tmp_path, test_pki, {"STORECAST_BODY_TIMEOUT_S": "1"})
    try:

        def trickle() -> Iterator[bytes]:
            yield b'{"values":['
            time.sleep(3)
            yield b'{"timestamp":1,"id":1}]}'

        with storecast.client("admin") as client:
            started = time.monotonic()
            response = raw_put(client, "/v1/1/production/metric", trickle())
            assert response.status_code == 400 and response.json()["status_code"] == 1303, response.text
            assert "did not arrive within 1 s" in response.json()["status_message"]
            assert time.monotonic() - started < 10
            # Nothing was stored, and the server still answers.
            assert client.get("/v1/1/production/metric/1").json()["status_code"] == 1107
    finally:
        stop_storecast(storecast)
