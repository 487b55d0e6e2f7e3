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
import os
from pathlib import Path

from storecast.env import SERVICE_TARGETS, dev_dir
from storecast.logs import setup_logging

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
    # The server side, only now: the client commands above load none of it.
    from storecast import serve

    if args.command == "migrate":
        serve.run_migration(args.store_url)
        return
    for flag, env in _FLAG_ENV.items():
        if getattr(args, flag) is not None:
            os.environ[env] = str(getattr(args, flag))
    if args.target in SERVICE_TARGETS:
        serve.run_services((args.target,))
    elif args.target == "all":
        serve.run_all()
    else:
        serve.run_gateway()


if __name__ == "__main__":
    main()
