"""`storecast import|export|get|put` against a real `storecast serve all`, over REST and gRPC."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from storecast.cli import main
from storecast.client import Client, Query, Series, Table, TransportError
from storecast.client.exporter import Exporter, ExportSpec, state_path
from storecast.client.files import FileReader
from storecast.client.importer import batches
from tests.conftest import Pki, Storecast, start_storecast, stop_storecast
from tests.helpers import HOUR, MINUTE, T0

BIG_ROWS = 2_000_000


def connection(storecast: Storecast, transport: str) -> list[str]:
    if transport == "grpc":
        return ["--grpc", storecast.grpc_target]
    cert, key = storecast.pki.cert("admin")
    return ["--url", storecast.base_url, "--cert", cert, "--key", key, "--ca", str(storecast.pki.ca)]


def storecast_cli(*argv: str) -> int:
    """`storecast ...` in this process: its exit code."""
    with pytest.raises(SystemExit) as exited:
        main(list(argv))
    code = exited.value.code
    return code if isinstance(code, int) else 1


@pytest.fixture(scope="module")
def big_storecast(tmp_path_factory: pytest.TempPathFactory, test_pki: Pki) -> Iterator[Storecast]:
    """A server at the production limits (100000 records per response, 32 MiB bodies), for the large round trips."""
    instance = start_storecast(
        tmp_path_factory.mktemp("big"), test_pki, {"STORECAST_MAX_RECORDS": "100000", "STORECAST_MAX_BODY_BYTES": str(32 << 20)}
    )
    yield instance
    stop_storecast(instance)


def production_file(rows: int, ids: int = 4) -> pa.Table:
    """`rows` renewable records of `ids` ids at 1 s, with nulls in q; sorted by id, timestamp as an export writes them."""
    rng = np.random.default_rng(11)
    per_id = rows // ids
    q = np.round(rng.normal(10.0, 3.0, per_id * ids), 3)
    columns: dict[str, Any] = {
        "timestamp": np.tile(T0 + np.arange(per_id, dtype=np.int64) * 1000, ids),
        "id": np.repeat(np.arange(1, ids + 1, dtype=np.int64), per_id),
        "p": np.round(rng.normal(400.0, 50.0, per_id * ids), 3),
        "q": pa.array(q, mask=rng.random(per_id * ids) < 0.05),
    }
    return pa.table(columns)


def assert_same_rows(expected: pa.Table, path: Path) -> None:
    if path.suffix == ".parquet":
        actual = pq.read_table(path)
    else:
        # An empty field is null, "" an empty string.
        options = pacsv.ConvertOptions(strings_can_be_null=True, quoted_strings_can_be_null=False)
        actual = pacsv.read_csv(path, convert_options=options)
    assert actual.column_names == expected.column_names
    assert actual.num_rows == expected.num_rows
    assert actual.cast(expected.schema).equals(expected)


@pytest.mark.parametrize(("transport", "suffix"), [("rest", ".csv"), ("grpc", ".parquet")])
def test_import_and_export_round_trip_millions(
    big_storecast: Storecast, tmp_path: Path, site: int, transport: str, suffix: str
) -> None:
    data = production_file(BIG_ROWS)
    source = tmp_path / f"in{suffix}"
    if suffix == ".parquet":
        pq.write_table(data, source, row_group_size=200_000)
    else:
        pacsv.write_csv(data, source)
    args = ["production/renewable", "--site", str(site), "--quiet", *connection(big_storecast, transport)]

    started = time.monotonic()
    assert storecast_cli("import", *args, str(source), "--batch-size", "20000") == 0
    imported = time.monotonic() - started
    output = tmp_path / f"out{suffix}"
    started = time.monotonic()
    assert storecast_cli("export", "--id", "1-4", "-o", str(output), *args) == 0
    exported = time.monotonic() - started
    print(f"{transport} {suffix}: import {BIG_ROWS / imported:,.0f} records/s, export {BIG_ROWS / exported:,.0f} records/s")
    assert_same_rows(data, output)
    assert json.loads(state_path(output).read_text())["complete"] is True
    assert not output.with_name(output.name + ".parts").exists()


def vector_files(series: Series) -> pa.Table:
    """Vintages of two ids, 48 periods each, in file order (id, creation_timestamp, timestamp)."""
    vintages, periods = 120, 48
    rows = 2 * vintages * periods
    rng = np.random.default_rng(5)
    columns: dict[str, Any] = {
        "creation_timestamp": np.tile(np.repeat(T0 + np.arange(vintages, dtype=np.int64) * HOUR, periods), 2),
        "id": np.repeat(np.array([3, 8], dtype=np.int64), vintages * periods),
        "timestamp": np.tile(T0 + np.arange(periods, dtype=np.int64) * 30 * MINUTE, 2 * vintages),
    }
    quality = pa.array(
        np.repeat(rng.integers(0, 5, 2 * vintages), periods).astype(np.uint32),
        mask=np.repeat(rng.random(2 * vintages) < 0.2, periods),
    )
    values = pa.array(np.round(rng.normal(500.0, 80.0, rows), 2), mask=rng.random(rows) < 0.05)
    if series.name == "commitment":
        columns |= {"quality": quality, "value": values}
    else:
        columns |= {"p": values, "quality": pa.array(rng.integers(0, 3, rows).astype(np.uint32), mask=rng.random(rows) < 0.1)}
    return pa.table(columns)


def tariff_file() -> pa.Table:
    periods = 3000
    labels = np.where(np.arange(periods) % 2 == 0, "on-peak", "off-peak").astype(object)
    labels[::7] = None
    columns: dict[str, Any] = {
        "id": np.repeat(np.array([1, 2], dtype=np.int64), periods),
        "timestamp": np.tile(T0 + np.arange(periods, dtype=np.int64) * HOUR, 2),
        "label": pa.array(np.tile(labels, 2), pa.string()),
        "value": np.tile(np.round(np.linspace(1.0, 20.0, periods), 4), 2),
    }
    return pa.table(columns)


@pytest.mark.parametrize("transport", ["rest", "grpc"])
@pytest.mark.parametrize("series_name", ["forecast/solar", "commitment", "tariff"])
def test_vectors_and_tariffs_round_trip(
    storecast: Storecast, tmp_path: Path, site: int, transport: str, series_name: str
) -> None:
    series = Series.parse(series_name)
    data = tariff_file() if series_name == "tariff" else vector_files(series)
    suffix = ".csv" if transport == "rest" else ".parquet"
    source, output = tmp_path / f"in{suffix}", tmp_path / f"out{suffix}"
    if suffix == ".csv":
        pacsv.write_csv(data, source)
    else:
        pq.write_table(data, source)
    args = [series_name, "--site", str(site), "--quiet", *connection(storecast, transport)]
    # 1000 is no multiple of 48: a batch ends with the vector that reaches it, never inside one.
    assert storecast_cli("import", *args, str(source), "--batch-size", "1000", "--workers", "3") == 0
    ids = "1,2" if series_name == "tariff" else "3,8"
    assert storecast_cli("export", "--id", ids, "-o", str(output), *args, "--batch-size", "2000") == 0
    assert_same_rows(data, output)


def test_import_batches_keep_each_vector_whole(tmp_path: Path) -> None:
    series = Series.parse("forecast/wind")
    data = vector_files(series)
    source = tmp_path / "in.parquet"
    pq.write_table(data, source)
    seen: set[tuple[int, int]] = set()
    for batch in batches(FileReader(source, series, "parquet", chunk_rows=1_111), series, 500):
        keys = set(zip(batch.table.columns["id"].tolist(), batch.table.columns["creation_timestamp"].tolist()))
        assert not keys & seen, "a vector in two batches"
        seen |= keys
        assert batch.table.rows < 500 + 48
    assert len(seen) == 240


def test_a_bad_line_is_reported_with_its_file_line_and_the_api_message(
    storecast: Storecast, tmp_path: Path, site: int, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = ["timestamp,id,p,q"] + [f"{T0 + i * 1000},1,{i}.5,1" for i in range(40)]
    lines[13] = f"{T0 + 12_000},1,twelve,1"  # line 14
    lines[27] = f"{T0 + 26_000},1,26.5"  # line 28: a field short
    source = tmp_path / "bad.csv"
    source.write_text("\n".join(lines) + "\n")
    for transport in ("rest", "grpc"):
        args = ["production/renewable", "--site", str(site), "--quiet", *connection(storecast, transport)]
        assert storecast_cli("import", *args, str(source), "--batch-size", "10") == 1
        errors = capsys.readouterr().err
        assert f"{source}:14: 1303 payload content error: values[2].p: expected a number or null, got a string" in errors
        assert "(batch of 10 records, lines 12-21, not stored)" in errors
        assert (
            f"{source}:28: cannot read the line: expected 4 fields, got 3 (batch of 10 records, lines 22-32, not stored)"
            in errors
        )
        assert "imported 19 records" in errors and "2 batches (20 records) not stored" in errors
    with Client.grpc(storecast.grpc_target) as client:
        stored = client.read(site, "production/renewable", 1).columns["timestamp"]
    # Lines 12-21 and 22-32 (with 28, unreadable) were two batches: neither was stored, even in part.
    expected = [T0 + i * 1000 for i in range(40) if i < 10 or i > 30]
    assert stored.tolist() == expected


def test_vector_rows_apart_in_the_file_are_refused(
    storecast: Storecast, tmp_path: Path, site: int, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "apart.csv"
    source.write_text(f"creation_timestamp,id,timestamp,p\n{T0},1,{T0},1\n{T0},2,{T0},2\n{T0},1,{T0 + 1},3\n")
    args = ["forecast/demand", "--site", str(site), *connection(storecast, "rest")]
    assert storecast_cli("import", *args, str(source)) == 2
    assert (
        f"{source}: line 4: the periods of vector id=1, creation_timestamp={T0} are apart in the file" in capsys.readouterr().err
    )


class FailingAfter:
    """A REST transport whose connection drops once `records` records were read: an export cut short."""

    def __init__(self, client: Client, records: int) -> None:
        self.inner = client.transport
        self.records = records

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)

    def read(self, site: int, series: Series, id: int, query: Query) -> Iterator[Table]:
        for table in self.inner.read(site, series, id, query):
            if self.records <= 0:
                raise TransportError("connection reset (the test cut the export short)")
            self.records -= table.rows
            yield table


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_export_resumes_after_the_last_unit_written(storecast: Storecast, tmp_path: Path, site: int, suffix: str) -> None:
    data = production_file(60_000, ids=3)
    series = Series.parse("production/renewable")
    cert, key = storecast.pki.cert("admin")
    output = tmp_path / f"out{suffix}"
    with Client.rest(storecast.base_url, cert=cert, key=key, ca=storecast.pki.ca) as client:
        client.put(site, series, data.to_pandas(), batch_size=10_000)

        def exporter(transport_client: Client) -> Exporter:
            return Exporter(
                transport_client, site, series, [1, 2, 3], output, "parquet" if suffix == ".parquet" else "csv", ExportSpec(),
                batch_size=4_000, workers=2, parquet_part_rows=1_000,
            )  # fmt: skip

        with pytest.raises(TransportError):
            exporter(Client(FailingAfter(client, records=25_000))).run(show_progress=False)  # type: ignore[arg-type]
        state = json.loads(state_path(output).read_text())
        assert state["complete"] is False and 0 < state["records"] < 60_000
        result = exporter(client).run(resume=True, show_progress=False)
        assert result.records == 60_000 - state["records"]
        assert exporter(client).run(resume=True, show_progress=False).already_complete
    assert_same_rows(data, output)


def test_get_and_put_commands(storecast: Storecast, tmp_path: Path, site: int, capsys: pytest.CaptureFixture[str]) -> None:
    body = tmp_path / "body.json"
    body.write_text(
        json.dumps({"values": [{"timestamp": T0, "id": 1, "p": 401.92, "q": 9.43}, {"timestamp": T0 + 1000, "id": 1, "p": 1}]})
    )
    rows = tmp_path / "rows.csv"
    rows.write_text(f"timestamp,id,p\n{T0 + 2000},1,3.25\n")
    for transport in ("rest", "grpc"):
        args = ["production/renewable", "--site", str(site), *connection(storecast, transport)]
        assert storecast_cli("put", *args, str(body)) == 0
        assert storecast_cli("put", *args, str(rows)) == 0
        assert "stored" in capsys.readouterr().out
        assert storecast_cli("get", *args, "1", "--output", "json") == 0
        assert json.loads(capsys.readouterr().out) == [
            {"timestamp": T0, "id": 1, "p": 401.92, "q": 9.43},
            {"timestamp": T0 + 1000, "id": 1, "p": 1.0, "q": None},
            {"timestamp": T0 + 2000, "id": 1, "p": 3.25, "q": None},
        ]
        assert storecast_cli("get", *args, "1", "--from", "2018-08-24T10:00:01", "--to", str(T0 + HOUR)) == 0
        table = capsys.readouterr().out.splitlines()
        assert table[0].split() == ["p", "q"] and table[2].split() == [str(T0 + 1000), "1.00", "NaN"] and len(table) == 4
        assert storecast_cli("get", *args, "1", "--output", "csv") == 0
        assert capsys.readouterr().out.splitlines()[:2] == ['"timestamp","id","p","q"', f"{T0},1,401.92,9.43"]
        assert storecast_cli("get", *args, "9") == 1
        assert "storecast get: 1107 invalid id" in capsys.readouterr().err


@pytest.mark.parametrize("transport", ["rest", "grpc"])
def test_an_aggregated_export_cuts_no_bucket_in_two(storecast: Storecast, tmp_path: Path, site: int, transport: str) -> None:
    rows = 20_000
    stamps = T0 + 500 + np.arange(rows, dtype=np.int64) * 1000
    with Client.grpc(storecast.grpc_target) as client:
        client.put(
            site, "production/metric", {"timestamp": stamps, "id": np.ones(rows, dtype=np.int64), "value": np.arange(rows) % 7}
        )
        expected = client.read(site, "production/metric", 1, Query.of(start=T0, end=T0 + 6 * HOUR, agg="avg", period="1m"))
    output = tmp_path / "averages.csv"
    args = ["production/metric", "--site", str(site), "--quiet", *connection(storecast, transport)]
    # Units of about 50 records: many slices, each ending on a minute.
    options = ["--from", str(T0), "--to", str(T0 + 6 * HOUR), "--agg", "avg", "--period", "1m", "--batch-size", "50"]
    assert storecast_cli("export", "--id", "1", "-o", str(output), *args, *options) == 0
    exported = pacsv.read_csv(output)
    assert exported["timestamp"].to_pylist() == expected.columns["timestamp"].tolist()
    assert exported["value"].to_pylist() == expected.columns["value"].tolist()


# The server side of the binary: `storecast get` and its kin are clients and load none of it.
SERVER_PACKAGES = ("services", "gateway", "clickhouse_connect", "chdb", "starlette", "uvicorn")
_LOADED_AFTER = """
import json, sys
from storecast.cli import main
try:
    main(sys.argv[1:])
except BaseException as ended:  # exit codes and failures alike: what was loaded on the way counts
    print(repr(ended), file=sys.stderr)
print(json.dumps(sorted({name.split(".")[0] for name in sys.modules})))
"""


def loaded_after(*argv: str) -> list[str]:
    """The server packages a fresh interpreter holds after `storecast <argv>`."""
    result = subprocess.run([sys.executable, "-c", _LOADED_AFTER, *argv], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    loaded: list[str] = json.loads(result.stdout.splitlines()[-1])
    return [name for name in loaded if name in SERVER_PACKAGES]


@pytest.mark.parametrize(
    "argv",
    [
        # A read that gets as far as calling the service (there is none): the command's own imports are done.
        ("get", "production/meter", "--site", "1", "7", "--grpc", "unix:/nonexistent", "--timeout", "2"),
        ("put", "production/meter", "--site", "1", "-", "--help"),
        ("import", "--help"),
        ("export", "--help"),
        ("demo", "--help"),
    ],
)
def test_a_client_command_loads_no_server_code(argv: tuple[str, ...]) -> None:
    assert loaded_after(*argv) == []


def test_a_server_command_is_seen_loading_the_server_side() -> None:
    """The probe above sees server code where there is some: `storecast migrate`, of a store that is not there."""
    assert {"services", "clickhouse_connect"} <= set(loaded_after("migrate", "--store-url", "http://127.0.0.1:9"))


def test_the_client_package_imports_a_name_on_first_use() -> None:
    """`import storecast.client` is cheap (the binary's argument parser holds the client's commands); each public
    name, listed once, for type checkers, in storecast/client/__init__.py, then comes from its module."""
    script = """
import json, sys
import storecast.client as client
before = sorted({"pandas", "pyarrow"} & set(sys.modules))
found = {name: getattr(client, name).__module__ for name in client.__all__}
print(json.dumps([before, found, sorted({"pandas", "pyarrow"} & set(sys.modules))]))
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    before, found, after = json.loads(result.stdout)
    assert before == [] and after == ["pandas", "pyarrow"]
    assert found["Client"] == "storecast.client.client" and found["ApiError"] == "storecast.client.errors"
    assert {"Query", "Series", "Table", "TransportError", "RowError", "to_datetime_index"} <= set(found)
