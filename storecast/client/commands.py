"""The client's subcommands of the `storecast` binary: import, export, get, put.

Connection, shared by all: `--url https://host:8443` with `--cert`/`--key`/`--ca`
(REST; by default the dev PKI's admin certificate, as `make run` serves), or
`--grpc host:50051` (gRPC; plaintext, or TLS with `--tls` and the same
certificate options). The commands run in actions.py: this module only
parses, so that the binary's other commands never load pandas or pyarrow.
"""

from __future__ import annotations

import argparse
from importlib import import_module
from pathlib import Path

from storecast.aggregations import AGGREGATIONS
from storecast.client.series import Series, all_series_names


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    connection = argparse.ArgumentParser(add_help=False)
    group = connection.add_argument_group("connection")
    group.add_argument("--url", help="the REST gateway (default https://localhost:$STORECAST_HTTP_PORT, 8443)")
    group.add_argument("--cert", type=Path, help="client certificate, PEM (default: the dev PKI's admin.cert.pem)")
    group.add_argument("--key", type=Path, help="its private key, PEM (default: the dev PKI's admin.key.pem)")
    group.add_argument(
        "--ca", type=Path, help="CA certificate(s) the server's must chain to (default: the dev PKI's ca.cert.pem)"
    )
    group.add_argument("--grpc", metavar="HOST:PORT", help="call the gRPC services there instead of the REST gateway")
    group.add_argument("--tls", action="store_true", help="gRPC over TLS (with --ca, and --cert/--key for mutual TLS)")
    group.add_argument("--timeout", type=float, default=120.0, help="seconds per request (default 120)")

    series = argparse.ArgumentParser(add_help=False)
    series.add_argument("series", type=Series.parse, metavar="SERIES", help=f"one of: {', '.join(all_series_names())}")
    series.add_argument("--site", type=int, required=True, help="site id")

    def reading(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--from", dest="start", type=_instant, help="periods from (epoch ms or ISO-8601, UTC if naive)")
        parser.add_argument("--to", dest="end", type=_instant, help="periods before")
        parser.add_argument("--generated-after", type=_instant, help="vectors created from")
        parser.add_argument("--generated-before", type=_instant, help="vectors created before")
        parser.add_argument("--agg", choices=list(AGGREGATIONS), help="aggregate per period")
        parser.add_argument("--period", help="aggregation period: 30s, 15m, 1h, 1d")

    parallel = argparse.ArgumentParser(add_help=False)
    parallel.add_argument("--workers", type=int, default=4, help="requests in flight (default 4)")
    parallel.add_argument("--quiet", action="store_true", help="no progress bar")

    helper = argparse.RawDescriptionHelpFormatter
    importing = commands.add_parser(
        "import",
        parents=[series, parallel, connection],
        formatter_class=helper,
        help="import a CSV or Parquet file",
        description="Put a CSV or Parquet file's records in batches, in parallel. Layouts: production "
        "timestamp,id,<attributes>; forecast and commitment creation_timestamp,id,timestamp,<vector attributes>,"
        "<period attributes> (one row per period, a vector's rows together); tariff id,timestamp,<attributes>.",
    )
    importing.add_argument("file", type=Path)
    importing.add_argument("--format", choices=("csv", "parquet"), help="default: by extension (.parquet, else CSV)")
    importing.add_argument("--batch-size", type=int, default=10_000, help="records per Put (default 10000)")
    importing.add_argument("--max-errors", type=int, default=10, help="stop after this many failed batches (default 10)")
    importing.set_defaults(client_command=run, client_action="run_import")

    exporting = commands.add_parser(
        "export",
        parents=[series, parallel, connection],
        help="export ids of a series to a CSV or Parquet file",
        description="Read every record of the given ids (every vintage of vectors unless --latest) into a file "
        "in the import's layout, in parallel; --resume continues an interrupted export.",
    )
    exporting.add_argument("--id", dest="ids", type=_ids, required=True, action="extend", help="ids: 1,2,5-9 (repeatable)")
    exporting.add_argument("-o", "--output", type=Path, required=True)
    exporting.add_argument("--format", choices=("csv", "parquet"), help="default: by extension (.parquet, else CSV)")
    reading(exporting)
    exporting.add_argument("--latest", action="store_true", help="vectors: only the latest of each id")
    exporting.add_argument("--batch-size", type=int, default=50_000, help="records per read unit (default 50000)")
    exporting.add_argument("--resume", action="store_true", help="continue from OUTPUT.export-state.json")
    exporting.set_defaults(client_command=run, client_action="run_export")

    getting = commands.add_parser("get", parents=[series, connection], help="print records of one id")
    getting.add_argument("id", type=int)
    reading(getting)
    getting.add_argument("--all", dest="generate_all", action="store_true", help="every vector created in the interval")
    getting.add_argument("--as-of", type=_instant, help="the latest vector created at or before this time")
    getting.add_argument("--output", choices=("table", "json", "csv"), default="table", help="default: table")
    getting.add_argument("--datetime", action="store_true", help="table: timestamps as UTC datetimes")
    getting.set_defaults(client_command=run, client_action="run_get")

    putting = commands.add_parser("put", parents=[series, connection], help="put a JSON or CSV file in one request")
    putting.add_argument("file", help='a v1 PUT body ({"values": [...]}, sent as it is; - for stdin) or a CSV file')
    putting.add_argument("--format", choices=("json", "csv"), help="default: by extension (.csv, else JSON)")
    putting.set_defaults(client_command=run, client_action="run_put")


def run(args: argparse.Namespace) -> int:
    """The chosen subcommand (actions.py); its exit code."""
    actions = import_module("storecast.client.actions")
    code: int = getattr(actions, args.client_action)(args)
    return code


def _instant(text: str) -> int:
    """Epoch milliseconds, or an ISO-8601 time (UTC if naive)."""
    if text.isdigit():
        return int(text)
    from storecast.client.query import to_ms

    return to_ms(text)


def _ids(text: str) -> list[int]:
    ids: list[int] = []
    for part in text.split(","):
        low, _, high = part.partition("-")
        ids += range(int(low), int(high or low) + 1)
    return ids
