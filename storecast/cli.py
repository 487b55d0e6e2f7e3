"""`storecast`: one binary, any component.

storecast serve all        ingest, query and vector services in one process (the embedded chDB
                           store allows one process per directory), the gateway in child processes
storecast serve gateway    the REST/JSON gateway alone
storecast serve ingest     one gRPC service alone (likewise query, vector)
storecast pki              a dev PKI and permissions file for `make run`
storecast migrate          apply the schema (ON CLUSTER with STORECAST_CLICKHOUSE_CLUSTER) and exit

storecast import           a CSV or Parquet file into a series, in parallel batches (storecast.client)
storecast export           ids of a series into a CSV or Parquet file, resumable
storecast get              print the records of one id (table, JSON or CSV)
storecast put              put a v1 JSON body or a CSV file in one request
storecast demo             a realistic demo site through the API: a week of 1 Hz PV, meter and battery,
                           forecasts, commitments, tariffs (the demo extra: pvlib, demandlib)
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import threading
from pathlib import Path

from services.lib.config import ServiceSettings
from services.server import SERVICE_TARGETS, start_services
from storecast.env import dev_dir, grpc_address, optional_setting
from storecast.logs import setup_logging
from storecast.metrics import serve_metrics
from storecast.tracing import setup_tracing

log = logging.getLogger("storecast")

# CLI flags override the environment variables of the same meaning.
_FLAG_ENV = {
    "store_url": "STORECAST_STORE_URL",
    "grpc_host": "STORECAST_GRPC_HOST",
    "grpc_port": "STORECAST_GRPC_PORT",
    "http_host": "STORECAST_HTTP_HOST",
    "http_port": "STORECAST_HTTP_PORT",
    "max_records": "STORECAST_MAX_RECORDS",
    "max_body_bytes": "STORECAST_MAX_BODY_BYTES",
}


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
    server.stop(grace=30).wait()
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
    server.stop(grace=30).wait()
    store.close()
    if metrics is not None:
        metrics.close()
    if failed or not stopping.is_set():
        raise SystemExit(1)


def console_hint(host: str, port: int) -> str:
    """What `make run` shows a person, in plain text beside the JSON log: where the web console is,
    and the browser certificate of the dev PKI when there is one (README, "Web console")."""
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


def create_pki(out: Path, permissions: Path) -> None:
    from storecast.dev_pki import create_dev_pki

    create_dev_pki(out, permissions)
    print(f"dev PKI in {out}, permissions in {permissions}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="storecast", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    serve_cmd = commands.add_parser("serve", help="run a component")
    serve_cmd.add_argument("target", choices=("all", "gateway", *SERVICE_TARGETS))
    for flag in _FLAG_ENV:
        serve_cmd.add_argument(f"--{flag.replace('_', '-')}", dest=flag)
    migrate_cmd = commands.add_parser("migrate", help="apply the schema to the store and exit")
    migrate_cmd.add_argument("--store-url", dest="store_url")
    pki_cmd = commands.add_parser("pki", help="create a dev PKI and permissions file")
    pki_cmd.add_argument("--out", type=Path, default=None)
    pki_cmd.add_argument("--permissions", type=Path, default=None)
    from storecast.client.commands import add_commands
    from storecast.demo import add_command as add_demo_command

    add_commands(commands)
    add_demo_command(commands)
    args = parser.parse_args(argv)
    if getattr(args, "client_command", None) is not None:
        raise SystemExit(args.client_command(args))

    setup_logging()
    if args.command == "pki":
        create_pki(args.out or dev_dir() / "pki", args.permissions or dev_dir() / "permissions.yaml")
        return
    if args.command == "migrate":
        run_migration(args.store_url)
        return
    for flag, env in _FLAG_ENV.items():
        if getattr(args, flag) is not None:
            os.environ[env] = str(getattr(args, flag))
    if args.target in SERVICE_TARGETS:
        run_services((args.target,))
    elif args.target == "all":
        run_all()
    else:
        run_gateway()


if __name__ == "__main__":
    main()
