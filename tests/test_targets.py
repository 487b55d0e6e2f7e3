"""The same binary as separate components, and what the gateway does when a service is gone."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.conftest import Pki, assert_error, free_port, ok, put, wait_until_serving
from tests.helpers import T0, admin_client, gateway_env, spawn, wait_for_health


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for process in started:
        process.terminate()
    for process in started:
        assert process.wait(timeout=60) == 0


def test_each_component_runs_alone(tmp_path: Path, test_pki: Pki, processes: list[subprocess.Popen[bytes]]) -> None:
    ingest_port, query_port, http_port = free_port(), free_port(), free_port()
    # Two embedded stores, because chDB allows one process per directory: the
    # point is that each target serves only its own service.
    ingest = spawn(
        "ingest", tmp_path, {"STORECAST_STORE_URL": f"chdb://{tmp_path / 'a'}", "STORECAST_GRPC_PORT": str(ingest_port)}
    )
    query = spawn("query", tmp_path, {"STORECAST_STORE_URL": f"chdb://{tmp_path / 'b'}", "STORECAST_GRPC_PORT": str(query_port)})
    processes += [ingest, query]
    wait_for_health(f"127.0.0.1:{ingest_port}", ingest, "storecast.v1.Ingest")
    wait_for_health(f"127.0.0.1:{query_port}", query, "storecast.v1.Query")
    with grpc.insecure_channel(f"127.0.0.1:{ingest_port}") as channel, pytest.raises(grpc.RpcError) as unknown:
        health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service="storecast.v1.Query"), timeout=10)
    assert unknown.value.code() == grpc.StatusCode.NOT_FOUND
    gateway = spawn(
        "gateway", tmp_path, gateway_env(test_pki, http_port, ingest=f"127.0.0.1:{ingest_port}", query=f"127.0.0.1:{query_port}")
    )
    processes.append(gateway)
    wait_until_serving(f"https://localhost:{http_port}", test_pki.ca, gateway, tmp_path / "gateway.log")
    with admin_client(test_pki, http_port) as admin:
        ok(put(admin, "/v1/1/production/meter", [{"timestamp": T0, "id": 1, "p": 1.0}]), 201)
        # The query service reads the other store, where nothing was written.
        assert_error(admin.get("/v1/1/production/meter/1"), 400, 1107)


def test_an_unreachable_service_is_1500_with_a_request_id(
    tmp_path: Path, test_pki: Pki, processes: list[subprocess.Popen[bytes]]
) -> None:
    http_port, dead = free_port(), f"127.0.0.1:{free_port()}"
    gateway = spawn("gateway", tmp_path, gateway_env(test_pki, http_port, ingest=dead, query=dead, vector=dead))
    processes.append(gateway)
    wait_until_serving(f"https://localhost:{http_port}", test_pki.ca, gateway, tmp_path / "gateway.log")
    with admin_client(test_pki, http_port) as admin:
        response = admin.get("/v1/1/production/meter/1")
        assert_error(response, 500, 1500)
        assert response.json()["status_message"] == "server error"
        request_id = response.headers["x-request-id"]
        # Routing errors need no service at all.
        assert_error(admin.get("/v1/1/production/toaster/1"), 400, 1106)
    log = (tmp_path / "gateway.log").read_text()
    assert f"request_id={request_id}" in log and "UNAVAILABLE" in log
