"""Concurrent writers and readers for a bounded time: no errors, every acknowledged record reads back.

`make test` runs it for a few seconds; `make soak` sets STORECAST_SOAK_SECONDS.
"""

from __future__ import annotations

import math
import os
import threading
import time

from tests.conftest import Storecast, read_all

# This module's own epoch, apart from the shared tests.helpers.T0: the timestamps its data was first written with.
LOAD_T0 = 1_650_000_000_000
BATCH = 500
SECONDS = float(os.environ.get("STORECAST_SOAK_SECONDS", "4"))


def record_value(equipment_id: int, index: int) -> float:
    return round(math.sin(equipment_id * 7919 + index) * 1000, 6)


class Tally:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.acknowledged: dict[int, int] = {}  # equipment id -> records acknowledged
        self.errors: list[str] = []
        self.requests = 0

    def error(self, text: str) -> None:
        with self.lock:
            self.errors.append(text)


def write(storecast: Storecast, site: int, equipment_id: int, deadline: float, tally: Tally) -> None:
    written = 0
    with storecast.client("admin") as client:
        while time.monotonic() < deadline:
            values = [
                {
                    "timestamp": LOAD_T0 + (written + i) * 1000,
                    "id": equipment_id,
                    "l1_p": record_value(equipment_id, written + i),
                    "f": 50.0,
                }
                for i in range(BATCH)
            ]
            response = client.put(f"/v1/{site}/production/meter-3p", json={"values": values})
            with tally.lock:
                tally.requests += 1
            if response.status_code != 201:
                tally.error(f"PUT {response.status_code} {response.text[:200]}")
                return
            written += BATCH
    with tally.lock:
        tally.acknowledged[equipment_id] = written


def read(storecast: Storecast, site: int, writers: list[int], deadline: float, tally: Tally) -> None:
    with storecast.client("reader") as client:
        turn = 0
        while time.monotonic() < deadline:
            equipment_id = writers[turn % len(writers)]
            turn += 1
            response = client.get(
                f"/v1/{site}/production/meter-3p/{equipment_id}", params={"from": LOAD_T0, "to": LOAD_T0 + 10**9}
            )
            with tally.lock:
                tally.requests += 1
            # Before a writer's first batch lands, its id is rightly unknown.
            if response.status_code not in (200, 206) and response.json().get("status_code") != 1107:
                tally.error(f"GET {response.status_code} {response.text[:200]}")
                return


def test_concurrent_writers_and_readers(storecast: Storecast, site: int) -> None:
    writers, readers = [1, 2, 3, 4], 4
    tally = Tally()
    deadline = time.monotonic() + SECONDS
    threads = [threading.Thread(target=write, args=(storecast, site, i, deadline, tally)) for i in writers]
    threads += [threading.Thread(target=read, args=(storecast, site, writers, deadline, tally)) for _ in range(readers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=SECONDS + 120)
        assert not thread.is_alive()
    assert tally.errors == []
    assert tally.requests > 8
    with storecast.client("reader") as client:
        for equipment_id in writers:
            records = read_all(client, f"/v1/{site}/production/meter-3p/{equipment_id}", LOAD_T0, LOAD_T0 + 10**10)
            expected = tally.acknowledged[equipment_id]
            assert len(records) == expected > 0
            checksum = sum(r["l1_p"] for r in records)
            assert math.isclose(checksum, sum(record_value(equipment_id, i) for i in range(expected)), rel_tol=1e-9, abs_tol=1e-6)
            assert [r["timestamp"] for r in records] == [LOAD_T0 + i * 1000 for i in range(expected)]
