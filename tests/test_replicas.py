"""Two replicas over one store: two gateways, two ingest and two query services (two `serve all`
instances) on one ClickHouse served over its HTTP interface (tests/chdb_http.py). Each query
service asks both ingest replicas for their recent writes (STORECAST_INGEST_REPLICAS)."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import FakeClickHouse, Pki, Storecast, assert_error, free_port, ok, put, start_storecast, stop_storecast

NOW_MS = (int(time.time()) - 600) * 1000


class _Replicas:
    def __init__(self, directory: Path, pki: Pki, store: FakeClickHouse) -> None:
        self.directory, self.pki, self.store = directory, pki, store
        self.ports = [free_port(), free_port()]
        self.instances: list[Storecast | None] = [None, None]

    def start(self, index: int) -> Storecast:
        directory = self.directory / f"replica{index}"
        directory.mkdir(exist_ok=True)
        env = {
            "STORECAST_STORE_URL": self.store.url,
            "STORECAST_GRPC_PORT": str(self.ports[index]),
            "STORECAST_INGEST_REPLICAS": ",".join(f"127.0.0.1:{port}" for port in self.ports),
            "STORECAST_DEV_DIR": str(directory / "dev"),
            # Nothing flushes on a timer: what a read finds, it found through the replicas.
            "STORECAST_FLUSH_INTERVAL": "3600",
        }
        instance = start_storecast(directory, self.pki, env)
        self.instances[index] = instance
        return instance


@pytest.fixture
def replicas(tmp_path: Path, test_pki: Pki) -> Iterator[_Replicas]:
    store = FakeClickHouse(tmp_path / "store")
    store.start()
    pair = _Replicas(tmp_path, test_pki, store)
    try:
        pair.start(0), pair.start(1)
        yield pair
    finally:
        for instance in pair.instances:
            if instance is not None and instance.process.poll() is None:
                stop_storecast(instance)
        store.kill()


def _read(instance: Storecast, site: int, count: int) -> list[float]:
    with instance.client() as client:
        body = ok(client.get(f"/v1/{site}/production/meter/1", params={"from": NOW_MS, "to": NOW_MS + count}))
    return [record["p"] for record in body["results"]]


def test_a_read_through_either_gateway_sees_writes_through_the_other_at_once(replicas: _Replicas, site: int) -> None:
    a, b = replicas.instances
    assert a is not None and b is not None
    with a.client() as to_a, b.client() as to_b:
        for n in range(6):
            ok(
                put(
                    to_a if n % 2 == 0 else to_b,
                    f"/v1/{site}/production/meter",
                    [{"timestamp": NOW_MS + n, "id": 1, "p": float(n)}],
                ),
                201,
            )
            assert _read(b if n % 2 == 0 else a, site, 6) == [float(i) for i in range(n + 1)]
        # A replacement through one replica of a record written through the other wins.
        ok(put(to_b, f"/v1/{site}/production/meter", [{"timestamp": NOW_MS, "id": 1, "p": 99.0}]), 201)
        assert _read(a, site, 6)[0] == 99.0


def test_kill_9_of_one_ingest_replica_loses_nothing_it_acknowledged(replicas: _Replicas, site: int) -> None:
    a, b = replicas.instances
    assert a is not None and b is not None
    with a.client() as to_a:
        for n in range(20):
            ok(put(to_a, f"/v1/{site}/production/meter", [{"timestamp": NOW_MS + n, "id": 1, "p": float(n)}]), 201)
    a.process.send_signal(signal.SIGKILL)
    a.process.wait(timeout=30)
    with b.client() as to_b:
        # What the dead replica acknowledged cannot be read as complete until it is back.
        assert_error(to_b.get(f"/v1/{site}/production/meter/1", params={"from": NOW_MS, "to": NOW_MS + 20}), 500, 1500)
    replicas.start(0)  # replays its log before it serves
    # The other replica's query service reconnects within its backoff (at most a second).
    deadline = time.monotonic() + 15
    with b.client() as to_b:
        while (
            response := to_b.get(f"/v1/{site}/production/meter/1", params={"from": NOW_MS, "to": NOW_MS + 20})
        ).status_code != 200:
            assert time.monotonic() < deadline, response.text
            time.sleep(0.2)
    assert [record["p"] for record in response.json()["results"]] == [float(n) for n in range(20)]
