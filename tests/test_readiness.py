"""Readiness and liveness: the services' gRPC health follows the store, the gateway's
/readyz follows the services, /livez and `storecast.liveness` stay up; while the store
is down requests answer 500/1500 at once."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import httpx
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from services.lib.rpc.readiness import LIVENESS
from tests.conftest import FakeClickHouse, Pki, Storecast, assert_error, free_port, ok, start_storecast, stop_storecast

SERVICES = ("storecast.v1.Ingest", "storecast.v1.Query", "storecast.v1.Vector")
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
BODY = {"values": [{"timestamp": 1535104800000, "id": 1, "p": 1.0}]}
FORECAST = {"values": [{"creation_timestamp": 1535104800000, "id": 1, "values": [{"timestamp": 1535104800000, "p": 1.0}]}]}


def health_of(channel: grpc.Channel, service: str) -> int:
    stub = health_pb2_grpc.HealthStub(channel)
    reply: health_pb2.HealthCheckResponse = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=2)
    return reply.status


def wait_for(condition: Callable[[], bool], timeout_s: float) -> float:
    """Seconds until `condition` held (polled every 0.1 s); fails after `timeout_s`."""
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < timeout_s, f"not within {timeout_s} s"
        time.sleep(0.1)
    return time.monotonic() - started


def unauthenticated(storecast: Storecast) -> httpx.Client:
    return storecast.client(None)


def test_probes_answer_without_a_client_certificate(storecast: Storecast) -> None:
    with unauthenticated(storecast) as client:
        live = client.get("/livez")
        assert live.status_code == 200 and live.json() == {"status_code": 1000, "status_message": "success"}
        ready = client.get("/readyz")
        assert ready.status_code == 200, ready.text
        assert ready.json()["services"] == {"ingest": "SERVING", "query": "SERVING", "vector": "SERVING"}
        # Other methods on the probe paths are the v1 tree's: 404 (1101), as for /openapi.json.
        assert_error(client.put("/readyz"), 404, 1101)
    with grpc.insecure_channel(storecast.grpc_target) as channel:
        for service in (*SERVICES, "", LIVENESS):
            assert health_of(channel, service) == SERVING


@pytest.fixture
def fake_store(tmp_path: Path) -> Iterator[FakeClickHouse]:
    fake = FakeClickHouse(tmp_path / "clickhouse")
    yield fake
    fake.kill()


def test_readiness_follows_the_store_and_requests_fail_fast_while_it_is_down(
    tmp_path: Path, test_pki: Pki, fake_store: FakeClickHouse
) -> None:
    health_port = free_port()
    # The store is down from the start: the services start anyway, NOT_SERVING.
    storecast = start_storecast(
        tmp_path,
        test_pki,
        {"STORECAST_STORE_URL": fake_store.url, "STORECAST_GRPC_HEALTH_PORT": str(health_port)},
    )
    try:
        with (
            grpc.insecure_channel(f"127.0.0.1:{health_port}") as health,
            storecast.client() as admin,
            unauthenticated(storecast) as probe,
        ):

            def serving() -> bool:
                return all(health_of(health, service) == SERVING for service in (*SERVICES, ""))

            def not_serving() -> bool:
                return all(health_of(health, service) == NOT_SERVING for service in (*SERVICES, ""))

            def assert_down() -> None:
                assert health_of(health, LIVENESS) == SERVING
                assert probe.get("/livez").status_code == 200
                wait_for(lambda: probe.get("/readyz").status_code == 503, timeout_s=5)
                body = probe.get("/readyz").json()
                assert body["status_code"] == 1500 and "not ready" in body["status_message"]
                # A production PUT is acknowledged from the write-ahead log, store or no store.
                started = time.monotonic()
                ok(admin.put("/v1/100/production/renewable", json=BODY), 201)
                assert time.monotonic() - started < 2
                calls: list[Callable[[], httpx.Response]] = [
                    lambda: admin.put("/v1/100/forecast/solar", json=FORECAST),
                    lambda: admin.get("/v1/100/production/renewable/1"),
                    lambda: admin.get("/v1/100/forecast/solar/1"),
                ]
                for call in calls:
                    started = time.monotonic()
                    response = call()
                    elapsed = time.monotonic() - started
                    assert_error(response, 500, 1500)
                    assert "x-request-id" in response.headers
                    assert elapsed < 2, elapsed

            assert not_serving()
            assert_down()

            fake_store.start()
            back = wait_for(serving, timeout_s=15)
            wait_for(lambda: probe.get("/readyz").status_code == 200, timeout_s=5)
            # The schema was applied once the store answered: a read reaches the engine (an id never stored;
            # id 1's record waits in the write-ahead log, which this stand-in store cannot take).
            assert_error(admin.get("/v1/100/production/renewable/2"), 400, 1107)

            fake_store.kill()
            down = wait_for(not_serving, timeout_s=10)
            assert_down()

            fake_store.start()
            back_again = wait_for(serving, timeout_s=10)
            wait_for(lambda: probe.get("/readyz").status_code == 200, timeout_s=5)
            print(
                f"SERVING {back:.1f} s after the store started, NOT_SERVING {down:.1f} s after it died, again {back_again:.1f} s"
            )
    finally:
        stop_storecast(storecast)
    assert storecast.process.returncode == 0, storecast.log.read_text()
