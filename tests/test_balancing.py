"""The gateway spreads calls over every address a service target resolves to
(in Kubernetes: the pods behind a headless Service), not only the first."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import Pki, free_port, ok, put, wait_until_serving
from tests.helpers import T0, admin_client, gateway_env, spawn, wait_for_health

PUTS = 20


def rows_in(store: Path) -> int:
    script = (
        "import clickhouse_connect, json, sys; c = clickhouse_connect.get_client(dsn=sys.argv[1]);"
        " print(json.dumps(c.query('SELECT count() FROM storecast.production_meter').result_rows[0][0]))"
    )
    done = subprocess.run([sys.executable, "-c", script, f"chdb://{store}"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    count: int = json.loads(done.stdout)
    return count


def test_calls_are_spread_over_every_replica(tmp_path: Path, test_pki: Pki) -> None:
    ports, http_port = [free_port(), free_port()], free_port()
    # Two ingest replicas, each on its own embedded store, so each store counts the PUTs its replica took.
    directories = [tmp_path / f"replica{i}" for i in range(len(ports))]
    replicas = []
    for directory, port in zip(directories, ports):
        directory.mkdir()
        replicas.append(
            spawn("ingest", directory, {"STORECAST_STORE_URL": f"chdb://{directory / 'store'}", "STORECAST_GRPC_PORT": str(port)})
        )
    target = "ipv4:" + ",".join(f"127.0.0.1:{port}" for port in ports)
    gateway = spawn("gateway", tmp_path, gateway_env(test_pki, http_port, ingest=target))
    try:
        for port, replica in zip(ports, replicas):
            wait_for_health(f"127.0.0.1:{port}", replica, "storecast.v1.Ingest")
        wait_until_serving(f"https://localhost:{http_port}", test_pki.ca, gateway, tmp_path / "gateway.log")
        with admin_client(test_pki, http_port) as admin:
            for site in range(PUTS):
                ok(put(admin, f"/v1/{site}/production/meter", [{"timestamp": T0, "id": 1, "p": 1.0}]), 201)
    finally:
        for process in (gateway, *replicas):
            process.terminate()
        for process in (gateway, *replicas):
            assert process.wait(timeout=60) == 0
    counts = [rows_in(directory / "store") for directory in directories]
    assert sum(counts) == PUTS and min(counts) > 0, counts
