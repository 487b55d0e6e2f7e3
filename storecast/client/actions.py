"""What `storecast import|export|get|put` do, once commands.py has parsed their arguments."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
from rich.console import Console

from storecast.client.arrow import table_to_arrow
from storecast.client.client import Client
from storecast.client.errors import ApiError, StorecastError
from storecast.client.exporter import Exporter, ExportSpec
from storecast.client.files import FileReader, file_format
from storecast.client.frames import to_frame
from storecast.client.importer import NotContiguous, import_file
from storecast.client.query import Query, period_ms
from storecast.client.table import RowError, Table
from storecast.client.v1json import encode_put
from storecast.env import dev_dir, setting


def connect(args: argparse.Namespace) -> Client:
    if args.grpc:
        if args.tls:
            return Client.grpc(args.grpc, cert=args.cert, key=args.key, ca=args.ca, tls=True, timeout=args.timeout)
        return Client.grpc(args.grpc, timeout=args.timeout)
    pki = dev_dir() / "pki"
    return Client.rest(
        args.url or f"https://localhost:{setting('STORECAST_HTTP_PORT')}",
        cert=args.cert or pki / "admin.cert.pem",
        key=args.key or (pki / "admin.key.pem" if args.cert is None else None),
        ca=args.ca or pki / "ca.cert.pem",
        timeout=args.timeout,
        max_connections=max(16, getattr(args, "workers", 1) * 2),
    )


def _fail(command: str, message: str, code: int = 1) -> int:
    print(f"storecast {command}: {message}", file=sys.stderr)
    return code


def run_import(args: argparse.Namespace) -> int:
    console = Console(stderr=True, soft_wrap=True)
    try:
        reader = FileReader(args.file, args.series, file_format(args.file, args.format))
    except (OSError, ValueError) as error:
        return _fail("import", str(error), 2)
    with connect(args) as client:
        try:
            result = import_file(
                client,
                args.site,
                args.series,
                args.file,
                reader,
                batch_size=args.batch_size,
                workers=args.workers,
                max_failures=args.max_errors,
                console=console,
                show_progress=not args.quiet,
            )
        except NotContiguous as error:
            return _fail("import", f"{args.file}: {error}", 2)
    console.print(
        f"imported {result.records:,} records from {args.file} in {result.seconds:.1f} s ({result.rate:,.0f} records/s)"
        + (f"; {len(result.failures)} batches ({result.failed_records:,} records) not stored" if result.failures else "")
        + ("; stopped after --max-errors failed batches" if result.stopped else ""),
        highlight=False,
    )
    return 1 if result.failures else 0


def run_export(args: argparse.Namespace) -> int:
    console = Console(stderr=True, soft_wrap=True)
    if not args.series.is_vector and (args.generated_after is not None or args.latest):
        return _fail("export", f"{args.series} has no vintages", 2)
    if (args.start is None) != (args.end is None) or (args.generated_after is None) != (args.generated_before is None):
        return _fail("export", "--from and --to come together, as do --generated-after and --generated-before", 2)
    spec = ExportSpec(
        start=args.start,
        end=args.end,
        generated_after=args.generated_after,
        generated_before=args.generated_before,
        latest=args.latest,
        agg=args.agg,
        period_ms=None if args.period is None else period_ms(args.period),
    )
    with connect(args) as client:
        exporter = Exporter(
            client,
            args.site,
            args.series,
            list(dict.fromkeys(args.ids)),
            args.output,
            file_format(args.output, args.format),
            spec,
            batch_size=args.batch_size,
            workers=args.workers,
        )
        try:
            result = exporter.run(resume=args.resume, console=console, show_progress=not args.quiet)
        except ValueError as error:
            return _fail("export", str(error), 2)
        except StorecastError as error:
            return _fail("export", f"{error}; run it again with --resume to continue")
    if result.already_complete:
        console.print(f"{args.output}: the export is already complete", highlight=False)
        return 0
    for skipped in result.skipped:
        console.print(f"skipped {skipped}", highlight=False)
    console.print(
        f"exported {result.records:,} records to {args.output} in {result.seconds:.1f} s ({result.rate:,.0f} records/s)",
        highlight=False,
    )
    return 1 if result.skipped else 0


def run_get(args: argparse.Namespace) -> int:
    with connect(args) as client:
        try:
            query = Query.of(
                start=args.start,
                end=args.end,
                generated_after=args.generated_after,
                generated_before=args.generated_before,
                generate_all=True if args.generate_all else None,
                as_of=args.as_of,
                agg=args.agg,
                period=args.period,
            )
            table = client.read(args.site, args.series, args.id, query)
        except ValueError as error:
            return _fail("get", str(error), 2)
        except StorecastError as error:
            return _fail("get", str(error))
    if args.output == "json":
        sys.stdout.buffer.write(_results_json(table) + b"\n")
    elif args.output == "csv":
        sink = pa.BufferOutputStream()
        pacsv.write_csv(table_to_arrow(table), sink)
        sys.stdout.buffer.write(sink.getvalue().to_pybytes())
    else:
        frame = to_frame(table, datetime_index=args.datetime)
        print(frame.to_string(max_rows=None) if len(frame) else "(no records)")
    sys.stdout.flush()
    return 0


def _results_json(table: Table) -> bytes:
    """The records as the API's `results` array."""
    body = encode_put(table)
    return body[len(b'{"values":') : -1]


def run_put(args: argparse.Namespace) -> int:
    fmt = args.format or ("csv" if str(args.file).lower().endswith(".csv") else "json")
    with connect(args) as client:
        try:
            if fmt == "json":
                body = sys.stdin.buffer.read() if args.file == "-" else Path(args.file).read_bytes()
                stored = client.put_json(args.site, args.series, body)
                count = "" if stored is None else f"{stored} "
            else:
                reader = FileReader(Path(args.file), args.series, "csv")
                chunks = list(reader)
                bad = [entry for chunk in chunks for entry in chunk.bad_lines]
                if bad:
                    return _fail("put", "; ".join(f"{args.file}:{line}: cannot read the line: {why}" for line, why in bad))
                table = Table.concat(args.series, [chunk.table for chunk in chunks])
                count = f"{client.put_table(args.site, table)} "
        except ApiError as error:
            where = f"{args.file}:{error.line}: " if error.line is not None else ""
            return _fail("put", f"{where}{error.status_code} {error.status_message}")
        except RowError as error:
            return _fail("put", f"{args.file}:{error.line}: {error}")
        except (OSError, ValueError) as error:
            return _fail("put", str(error), 2)
        except StorecastError as error:
            return _fail("put", str(error))
    print(f"stored {count}records")
    return 0
