"""A real storecast for the tests: `storecast serve all` as a subprocess, on the
embedded ClickHouse engine, behind real TLS with certificates made here."""

from __future__ import annotations

import datetime as dt
import os
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import grpc
import httpx
import pytest

from storecast import dev_pki
from tests.helpers import JsonObject, gateway_tls_env

# Certificates the tests present, by name: (CN, sites, access) for those with permissions.
CLIENTS: dict[str, tuple[str | list[int], list[str]]] = {
    "admin": ("*", ["read", "write"]),
    "reader": ("*", ["read"]),
    "site100": ([100], ["read", "write"]),
    "writer-only": ("*", ["write"]),
}
MAX_RECORDS = 1000
MAX_BODY_BYTES = 4 * 1024 * 1024

TESTS = Path(__file__).resolve().parent
TIERS = ("unit", "e2e", "browser", "soak")
BROWSER_FILES = {"test_console.py"}
# What `make soak` runs long; it sets STORECAST_SOAK_SECONDS. Run short (as `make test` does), they are e2e tests.
SOAK_FILES = {"test_load.py", "test_faults.py", "test_contract_fuzz.py", "test_put_fuzz.py", "test_memory.py"}


def tier(path: Path) -> str:
    if path.is_relative_to(TESTS / "unit"):
        return "unit"
    if path.name in BROWSER_FILES:
        return "browser"
    if path.name in SOAK_FILES and "STORECAST_SOAK_SECONDS" in os.environ:
        return "soak"
    return "e2e"


# First, so that `-m` (the mark plugin's own hook) deselects by the tiers given here.
@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test's one tier, from where it lives: the single rule, never a marker written by hand."""
    for item in items:
        hand_written = [mark.name for mark in item.iter_markers() if mark.name in TIERS]
        if hand_written:
            raise pytest.UsageError(f"{item.nodeid} marks its own tier {hand_written}: tests/conftest.py assigns tiers")
        item.add_marker(tier(item.path))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Pki:
    directory: Path
    ca: Path

    def cert(self, name: str) -> tuple[str, str]:
        return str(self.directory / f"{name}.cert.pem"), str(self.directory / f"{name}.key.pem")


@pytest.fixture(scope="session")
def test_pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    directory = tmp_path_factory.mktemp("pki")
    ca = dev_pki.new_ca("storecast test CA")
    ca.write(directory, "ca")
    dev_pki.issue(ca, "localhost", client=False, server_names=("localhost", "127.0.0.1")).write(directory, "server")
    for name in CLIENTS:
        dev_pki.issue(ca, name).write(directory, name)
    # Known to nobody, though signed by the right CA.
    dev_pki.issue(ca, "stranger").write(directory, "stranger")
    now = dt.datetime.now(dt.UTC)
    dev_pki.issue(ca, "admin", not_before=now - dt.timedelta(days=30), not_after=now - dt.timedelta(days=1)).write(
        directory, "expired-admin"
    )
    # A server certificate (serverAuth only) presented as a client one.
    dev_pki.issue(ca, "admin", client=False, server_names=("admin.example",)).write(directory, "server-only-admin")
    other_ca = dev_pki.new_ca("another CA")
    dev_pki.issue(other_ca, "admin").write(directory, "other-ca-admin")
    (directory / "permissions.yaml").write_text(dev_pki.permissions_yaml(CLIENTS))
    return Pki(directory, directory / "ca.cert.pem")


@dataclass
class Storecast:
    base_url: str
    grpc_target: str
    pki: Pki
    process: subprocess.Popen[bytes]
    log: Path

    def ssl_context(self, name: str | None) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=str(self.pki.ca))
        if name is not None:
            context.load_cert_chain(*self.pki.cert(name))
        return context

    def client(self, name: str | None = "admin") -> httpx.Client:
        """An HTTPS client presenting the named certificate (None: no certificate)."""
        return httpx.Client(base_url=self.base_url, verify=self.ssl_context(name), timeout=60)


def wait_until_serving(url: str, ca: Path, process: subprocess.Popen[bytes], log: Path, timeout_s: float = 90) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"storecast exited with {process.returncode}:\n{log.read_text()}")
        try:
            httpx.get(url, verify=ssl.create_default_context(cafile=str(ca)), timeout=2)
            return
        except httpx.TransportError:
            time.sleep(0.2)
    raise RuntimeError(f"storecast did not start in {timeout_s}s:\n{log.read_text()}")


def start_storecast(directory: Path, test_pki: Pki, extra_env: dict[str, str] | None = None) -> Storecast:
    http_port, grpc_port = free_port(), free_port()
    tmp = directory / "tmp"
    tmp.mkdir(exist_ok=True)
    env = {
        **os.environ,
        "STORECAST_STORE_URL": f"chdb://{directory / 'store'}",
        "STORECAST_HTTP_PORT": str(http_port),
        "STORECAST_GRPC_PORT": str(grpc_port),
        **gateway_tls_env(test_pki),
        "STORECAST_MAX_RECORDS": str(MAX_RECORDS),
        "STORECAST_MAX_BODY_BYTES": str(MAX_BODY_BYTES),
        # The engine's insert files: a killed process leaves its last one behind.
        "TMPDIR": str(tmp),
        # The write-ahead log belongs to this instance, whatever its store (an http:// one included).
        "STORECAST_LOG_DIR": str(directory / "wal"),
        **(extra_env or {}),
    }
    log = directory / "storecast.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "storecast", "serve", "all"],
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    base_url = f"https://localhost:{http_port}"
    wait_until_serving(base_url, test_pki.ca, process, log)
    return Storecast(base_url, f"127.0.0.1:{grpc_port}", test_pki, process, log)


def start_observed(directory: Path, test_pki: Pki, extra_env: dict[str, str] | None = None) -> tuple[Storecast, int]:
    """start_storecast's, with its metrics on a port of their own: the instance and that port."""
    metrics_port = free_port()
    return start_storecast(directory, test_pki, {"STORECAST_METRICS_PORT": str(metrics_port), **(extra_env or {})}), metrics_port


class FakeClickHouse:
    """tests/chdb_http.py in a process of its own: a ClickHouse server over one chDB directory,
    which several storecast processes can share. Kill it for "down", start it again for "back"."""

    def __init__(self, directory: Path) -> None:
        self.port = free_port()
        self.directory = directory
        self.process: subprocess.Popen[str] | None = None

    @property
    def url(self) -> str:
        """The store URL of storecast services that use it (database `storecast`)."""
        return f"http://127.0.0.1:{self.port}/storecast"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.chdb_http", str(self.port), str(self.directory)], stdout=subprocess.PIPE, text=True
        )
        assert self.process.stdout is not None and self.process.stdout.readline().strip() == "ready"

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None


def stop_storecast(storecast: Storecast) -> None:
    storecast.process.terminate()
    try:
        storecast.process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        storecast.process.kill()
        storecast.process.wait()


@pytest.fixture(scope="session")
def storecast(tmp_path_factory: pytest.TempPathFactory, test_pki: Pki) -> Iterator[Storecast]:
    instance = start_storecast(tmp_path_factory.mktemp("storecast"), test_pki)
    yield instance
    stop_storecast(instance)
    assert instance.process.returncode == 0, instance.log.read_text()


@pytest.fixture(scope="session")
def admin(storecast: Storecast) -> Iterator[httpx.Client]:
    with storecast.client("admin") as client:
        yield client


@pytest.fixture(scope="session")
def grpc_channel(storecast: Storecast) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(storecast.grpc_target) as channel:
        yield channel


_site_counter = iter(range(10_000, 4_000_000_000))


@pytest.fixture
def site() -> int:
    """A site id no other test writes to, so tests share one server without sharing data."""
    return next(_site_counter)


def put(client: httpx.Client, path: str, values: Sequence[object]) -> httpx.Response:
    """A PUT of {"values": values}: records, or any JSON values a test sends."""
    return client.put(path, json={"values": values})


def assert_error(response: httpx.Response, http_status: int, code: int, *fragments: str) -> None:
    assert response.status_code == http_status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["status_code"] == code, body
    assert "results" not in body
    for fragment in fragments:
        assert fragment in body["status_message"], body


def ok(response: httpx.Response, http_status: int = 200) -> JsonObject:
    """The body of a success (200, 201) or partial (206) response."""
    assert response.status_code == http_status, response.text
    body: JsonObject = response.json()
    assert body["status_code"] == (1001 if http_status == 206 else 1000), body
    return body


def read_all(client: httpx.Client, path: str, start: int, end: int) -> list[JsonObject]:
    """Every record of [start, end[, following next_from through partial responses."""
    results: list[JsonObject] = []
    while True:
        response = client.get(path, params={"from": start, "to": end})
        body = ok(response, response.status_code)
        results += body["results"]
        if response.status_code == 200:
            return results
        start = body["next_from"]
