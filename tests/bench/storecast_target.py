"""storecast under test: `storecast serve all` on its own chDB directory, behind the dev PKI."""

from __future__ import annotations

import os
import ssl
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx
import msgspec
from processes import Server, free_port, launch, wait_until
from workload import EQUIPMENT_TYPE, Dataset

REPO = Path(__file__).resolve().parents[2]
DEV_DIR = REPO / ".dev"
PKI_DIR = DEV_DIR / "pki"
CLIENT = "admin"


@dataclass
class Storecast:
    server: Server
    ca: Path
    grpc_target: str = ""

    def ssl_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=str(self.ca))
        context.load_cert_chain(str(PKI_DIR / f"{CLIENT}.cert.pem"), str(PKI_DIR / f"{CLIENT}.key.pem"))
        return context

    def client(self) -> httpx.Client:
        """One keep-alive HTTPS connection presenting the admin client certificate."""
        return httpx.Client(base_url=self.server.base_url, verify=self.ssl_context(), timeout=120)

    @staticmethod
    def put(client: httpx.Client, site_id: int, body: bytes) -> httpx.Response:
        return client.put(
            f"/v1/{site_id}/production/{EQUIPMENT_TYPE}", content=body, headers={"content-type": "application/json"}
        )

    @staticmethod
    def get(client: httpx.Client, site_id: int, equipment_id: int, params: Mapping[str, str | int]) -> httpx.Response:
        return client.get(f"/v1/{site_id}/production/{EQUIPMENT_TYPE}/{equipment_id}", params=params)


def check_pki() -> None:
    needed = [PKI_DIR / "ca.cert.pem", PKI_DIR / "server.cert.pem", PKI_DIR / f"{CLIENT}.cert.pem", DEV_DIR / "permissions.yaml"]
    missing = [str(p) for p in needed if not p.exists()]
    if missing:
        raise RuntimeError(f"dev PKI missing ({', '.join(missing)}): run `make pki` (or `make bench`)")


def start_storecast(workdir: Path, max_records: int, extra_env: dict[str, str] | None = None) -> Storecast:
    check_pki()
    root = workdir / "storecast"
    root.mkdir(parents=True)
    store = root / "store"
    http_port = free_port()
    # The services' Unix socket, as `make run` serves them (storecast/serve.py); the bench's gRPC clients use it too.
    grpc_socket = root / "run" / "grpc.sock"
    env = {
        **os.environ,
        "STORECAST_STORE_URL": f"chdb://{store}",
        "STORECAST_HTTP_HOST": "127.0.0.1",
        "STORECAST_HTTP_PORT": str(http_port),
        "STORECAST_GRPC_SOCKET": str(grpc_socket),
        "STORECAST_TLS_CERT": str(PKI_DIR / "server.cert.pem"),
        "STORECAST_TLS_KEY": str(PKI_DIR / "server.key.pem"),
        "STORECAST_TLS_CLIENT_CA": str(PKI_DIR / "ca.cert.pem"),
        "STORECAST_PERMISSIONS": str(DEV_DIR / "permissions.yaml"),
        "STORECAST_MAX_RECORDS": str(max_records),
        # Each timed read pays its work, as VictoriaMetrics' (nocache=1): answers kept of settled
        # reads are measured in a phase of their own (kept_answers.py).
        "STORECAST_ANSWER_CACHE_BYTES": "0",
        **(extra_env or {}),
    }
    # The console script of this venv, so the measured process is storecast itself (no wrapper).
    argv = [str(Path(sys.executable).with_name("storecast")), "serve", "all"]
    server = launch("storecast", argv, store, workdir / "storecast.log", f"https://127.0.0.1:{http_port}", env)
    target = Storecast(server, PKI_DIR / "ca.cert.pem", f"unix:{grpc_socket}")
    verify = ssl.create_default_context(cafile=str(target.ca))
    # Any HTTP answer (even 404) proves the gateway and TLS are up.
    wait_until(lambda: httpx.get(f"{server.base_url}/", verify=verify, timeout=2).status_code > 0, server)
    return target


def range_params(dataset: Dataset, **extra: str | int) -> dict[str, str | int]:
    return {"from": dataset.start_ms, "to": dataset.end_ms, **extra}


def body_of(response: httpx.Response) -> bytes:
    """The body of a successful GET, as it came (content coding undone, JSON not parsed): what
    a peer's timed read returns too, so that no side's time holds the client's parsing."""
    if response.status_code != 200 or not response.content.startswith(b'{"status_code":1000,'):
        raise RuntimeError(f"GET {response.request.url} -> {response.status_code}: {response.text[:300]}")
    return response.content


def results_of(response: httpx.Response) -> list[dict[str, object]]:
    """The `results` of a successful GET, or an error naming what came back."""
    if response.status_code != 200:
        raise RuntimeError(f"GET {response.request.url} -> {response.status_code}: {response.text[:300]}")
    body = msgspec.json.decode(response.content)
    if body.get("status_code") != 1000:
        raise RuntimeError(f"GET {response.request.url}: {body.get('status_code')} {body.get('status_message')}")
    results = body["results"]
    if not isinstance(results, list):
        raise RuntimeError(f"GET {response.request.url}: `results` is {type(results).__name__}, not a list")
    return results
