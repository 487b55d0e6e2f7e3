"""The server side of the `storecast` binary: `storecast serve` and `storecast migrate`.

Only those commands import this module, and with it the services, the gateway
and the store's client: the client commands (`storecast get`, `put`, ...) load
none of them (storecast/cli.py).
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from pathlib import Path

from services.lib.config import ServiceSettings
from services.server import start_services
from storecast.env import SERVICE_TARGETS, dev_dir, grpc_address, optional_setting
from storecast.metrics import serve_metrics
from storecast.tracing import setup_tracing

log = logging.getLogger("storecast")


def run_services(targets: tuple[str, ...]) -> None:
    # Spans exported when STORECAST_OTLP_ENDPOINT is set (storecast/tracing.py), as storecast-<service>.
    setup_tracing("-".join(targets))
    server, store = start_services(targets)
    metrics = serve_metrics()
    stopping = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stopping.set())
    stopping.wait()
    log.info("draining in-flight calls")
    server.stop(grace=30)
    store.close()
    if metrics is not None:
        metrics.close()


def run_gateway() -> None:
    from gateway.config import GatewaySettings
    from gateway.server import serve_gateway

    settings = GatewaySettings.from_env()
    url = f"https://{settings.http_host}:{settings.http_port}"
    log.info("gateway on %s, OpenAPI document: %s/openapi.json", url, url)
    # None in a worker of `serve all`, whose metrics the parent serves.
    metrics = serve_metrics()
    # Each worker of `serve all` too: its own provider, from the environment it inherits.
    setup_tracing("gateway")
    serve_gateway(settings)
    if metrics is not None:
        metrics.close()


def run_all() -> None:
    """The services here, the gateway in `STORECAST_HTTP_WORKERS` child processes.

    The gateway is a gRPC client like any other, so it need not share the
    services' process, and apart it does not share their interpreter lock:
    TLS, HTTP and JSON envelopes on one core, validation and the store on the
    other. The children serve one listening socket bound here, and die with
    this process (kill -9 included).
    """
    from gateway.config import GatewaySettings
    from gateway.server import spawn_workers, stop_workers

    internal = _internal_socket()
    setup_tracing("all")  # the services here, as `storecast`; the workers set up their own
    server, store = start_services(SERVICE_TARGETS)
    settings = GatewaySettings.from_env()
    log.info("gRPC services for internal callers on %s", f"unix:{internal}" if internal else grpc_address())
    # One endpoint for the services here and the gateway workers (storecast/metrics.py).
    metrics = serve_metrics(gateway_workers=True)
    workers = spawn_workers(settings, metrics.worker_env() if metrics is not None else None)
    url = f"https://{settings.http_host}:{settings.http_port}"
    log.info("gateway on %s (%d worker processes), OpenAPI document: %s/openapi.json", url, len(workers), url)
    print(console_hint(settings.http_host, settings.http_port), flush=True)
    stopping = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stopping.set())
    while not stopping.wait(0.5):
        if any(worker.poll() is not None for worker in workers):
            log.error("a gateway worker exited; stopping")
            break
    # The workers drain their in-flight requests, which need the services, before these stop.
    failed = stop_workers(workers)
    log.info("draining in-flight calls")
    server.stop(grace=30)
    store.close()
    if metrics is not None:
        metrics.close()
    if failed or not stopping.is_set():
        raise SystemExit(1)


def console_hint(host: str, port: int) -> str:
    """What `make run` shows a person, in plain text beside the JSON log: where the web console is,
    and the browser certificate of the dev PKI when there is one (docs/console.md)."""
    from storecast.dev_pki import DEV_P12_PASSWORD

    shown = "localhost" if host in ("0.0.0.0", "::", "127.0.0.1") else host
    hint = f"web console: https://{shown}:{port}/console/"
    p12 = dev_dir() / "pki" / "admin.p12"
    if optional_setting("STORECAST_TLS_CERT") is None and p12.exists():
        hint += f" (import {p12} into the browser, password {DEV_P12_PASSWORD!r}, and trust {p12.with_name('ca.cert.pem')})"
    return hint


def _internal_socket() -> Path | None:
    """In `serve all` the services listen, unless STORECAST_GRPC_PORT asks for TCP, on a Unix
    socket only this user can open (STORECAST_GRPC_SOCKET, default <dev dir>/run/grpc.sock):
    a TCP port on 127.0.0.1 would let any local process write any site, past the
    gateway's per-site permissions. The gateway workers are pointed at it."""
    if optional_setting("STORECAST_GRPC_PORT") is not None and optional_setting("STORECAST_GRPC_SOCKET") is None:
        return None
    socket = Path(optional_setting("STORECAST_GRPC_SOCKET") or dev_dir() / "run" / "grpc.sock")
    os.environ["STORECAST_GRPC_SOCKET"] = str(socket)
    for service in SERVICE_TARGETS:
        os.environ.setdefault(f"STORECAST_{service.upper()}_TARGET", f"unix:{socket}")
    return socket


def run_migration(store_url: str | None) -> None:
    from services.lib.store.migrate import migrate

    if store_url is not None:
        os.environ["STORECAST_STORE_URL"] = store_url
    migrate(ServiceSettings.from_env())
