"""The typed gRPC API against the v1 JSON one, on one fresh `storecast serve all`.

- ingest: the same meter-3p records as RecordBatch and as v1 JSON bodies,
  in batches of 5,000 and 100,000 records, over gRPC (records/s);
- a streaming read (StreamProduction) of 1,000,000 records: time, and the
  peak RSS of the server and of this client process while it runs.

- `storecast import` of a CSV file of 10,000,000 records over gRPC (records/s).

Standalone: .venv/bin/python tests/bench/typed.py [--records 1000000] [--import-records 10000000]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import grpc
import msgspec
import numpy as np
from processes import rss_bytes
from storecast_target import start_storecast
from workload import ATTRIBUTES, EQUIPMENT_TYPE

from storecast.catalog import EQUIPMENT_TYPES
from storecast.v1 import catalog_pb2, ingest_pb2, ingest_pb2_grpc, query_pb2, query_pb2_grpc, records_pb2

T0 = 1_700_000_000_000
BATCH_SIZES = (5_000, 100_000)
_EQUIPMENT = catalog_pb2.EquipmentType.ValueType(EQUIPMENT_TYPES[EQUIPMENT_TYPE].enum_value)
_CHANNEL_OPTIONS = [("grpc.max_receive_message_length", -1), ("grpc.max_send_message_length", -1)]


def columns(start: int, rows: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """One equipment's records, one per second from T0 + start seconds."""
    rng = np.random.default_rng(start)
    timestamps = T0 + (start + np.arange(rows, dtype=np.int64)) * 1_000
    return timestamps, {name: np.round(rng.normal(50.0, 5.0, rows), 3) for name in ATTRIBUTES}


def typed_request(site_id: int, record_id: int, start: int, rows: int) -> ingest_pb2.PutProductionRequest:
    timestamps, values = columns(start, rows)
    batch = records_pb2.RecordBatch(timestamps=timestamps, ids=np.full(rows, record_id, dtype=np.uint32))
    batch.columns.extend(records_pb2.Column(name=name, doubles=array) for name, array in values.items())
    return ingest_pb2.PutProductionRequest(site_id=site_id, equipment_type=_EQUIPMENT, batch=batch)


def json_request(site_id: int, record_id: int, start: int, rows: int) -> ingest_pb2.PutProductionRequest:
    timestamps, values = columns(start, rows)
    names = list(values)
    table = np.column_stack([values[name] for name in names]).tolist()
    records = [
        {"timestamp": t, "id": record_id, **dict(zip(names, row))} for t, row in zip(timestamps.tolist(), table, strict=True)
    ]
    body = msgspec.json.encode({"values": records})
    return ingest_pb2.PutProductionRequest(site_id=site_id, equipment_type=_EQUIPMENT, v1_json=body)


def ingest_rate(stub: ingest_pb2_grpc.IngestStub, requests: list[ingest_pb2.PutProductionRequest]) -> dict[str, Any]:
    """Records/s of storing the requests one after the other (encoding not counted)."""
    stub.PutProduction(requests[0], timeout=600)  # warm-up: first insert of this table
    started = time.perf_counter()
    stored = sum(stub.PutProduction(request, timeout=600).stored for request in requests[1:])
    elapsed = time.perf_counter() - started
    return {"records": stored, "seconds": elapsed, "records_per_s": stored / elapsed}


def bench_ingest(channel: grpc.Channel, total: int) -> dict[str, Any]:
    stub = ingest_pb2_grpc.IngestStub(channel)
    results: dict[str, Any] = {}
    for site, size in enumerate(BATCH_SIZES, start=1):
        count = max(2, total // size + 1)
        for form, build in (("typed", typed_request), ("json", json_request)):
            requests = [build(site * 10 + (form == "json"), 1, i * size, size) for i in range(count)]
            results[f"{form}_{size}"] = ingest_rate(stub, requests)
            print(f"  {form:5} batches of {size:>7,}: {results[f'{form}_{size}']['records_per_s']:>10,.0f} records/s")
    return results


def bench_stream(channel: grpc.Channel, server_pid: int, records: int) -> dict[str, Any]:
    """Store `records` for one id (typed, 100k per Put), then stream them all back."""
    stub = ingest_pb2_grpc.IngestStub(channel)
    site = 99
    for start in range(0, records, 100_000):
        stub.PutProduction(typed_request(site, 1, start, min(100_000, records - start)), timeout=600)
    peak_server = rss_bytes(server_pid)
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak_server
        while not stop.wait(0.05):
            peak_server = max(peak_server, rss_bytes(server_pid))

    sampler = threading.Thread(target=sample, daemon=True)
    server_before = rss_bytes(server_pid)
    sampler.start()
    request = query_pb2.GetProductionRequest(site_id=site, equipment_type=_EQUIPMENT, id=1)
    started = time.perf_counter()
    received, batches = 0, 0
    for batch in query_pb2_grpc.QueryStub(channel).StreamProduction(request, timeout=600):
        received += len(batch.timestamps)
        batches += 1
    elapsed = time.perf_counter() - started
    stop.set()
    sampler.join()
    if received != records:
        raise RuntimeError(f"streamed {received} records of {records}")
    result = {
        "records": received,
        "batches": batches,
        "seconds": elapsed,
        "records_per_s": received / elapsed,
        "server_rss_before_bytes": server_before,
        "server_peak_rss_bytes": peak_server,
        "client_peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
    }
    print(
        f"  stream of {received:,} records in {batches} batches: {elapsed:.2f} s ({received / elapsed:,.0f} records/s),"
        f" server RSS {server_before / 2**20:.0f} -> peak {peak_server / 2**20:.0f} MiB,"
        f" client peak {result['client_peak_rss_bytes'] / 2**20:.0f} MiB"
    )
    return result


def write_csv(path: Path, records: int) -> None:
    """A meter-3p CSV of `records` rows (timestamp, id, attributes), 100 equipments, one row per second each."""
    with path.open("w") as out:
        out.write(",".join(["timestamp", "id", *ATTRIBUTES]) + "\n")
        for start in range(0, records, 500_000):
            rows = min(500_000, records - start)
            index = start + np.arange(rows, dtype=np.int64)
            timestamps, values = columns(start, rows)
            table = np.column_stack([T0 + (index // 100) * 1_000, index % 100 + 1, *(values[name] for name in ATTRIBUTES)])
            np.savetxt(out, table, delimiter=",", fmt=["%d", "%d", *(["%.3f"] * len(ATTRIBUTES))])


def bench_import(workdir: Path, grpc_target: str, records: int) -> dict[str, Any]:
    """`storecast import` of a CSV file over gRPC (100,000-record batches, 4 workers), end to end."""
    csv = workdir / "import.csv"
    write_csv(csv, records)
    argv = [str(Path(sys.executable).with_name("storecast")), "import", f"production/{EQUIPMENT_TYPE}", str(csv)]
    argv += ["--site", "77", "--grpc", grpc_target, "--batch-size", "100000", "--workers", "4", "--quiet"]
    started = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"storecast import failed ({done.returncode}): {done.stderr[-2000:]}")
    size = csv.stat().st_size
    csv.unlink()
    result = {"records": records, "file_bytes": size, "seconds": seconds, "records_per_s": records / seconds}
    print(f"  import of a {records:,}-record CSV ({size / 2**20:.0f} MiB) over gRPC: {records / seconds:,.0f} records/s")
    return result


def bench_typed(workdir: Path, records: int, import_records: int = 0) -> dict[str, Any]:
    # The server's cap is the stream's batch size; the unary reads are not measured here.
    storecast = start_storecast(workdir, 100_000)
    try:
        with grpc.insecure_channel(storecast.grpc_target, options=_CHANNEL_OPTIONS) as channel:
            result = {
                "records": records,
                "ingest": bench_ingest(channel, records),
                "stream": bench_stream(channel, storecast.server.process.pid, records),
            }
        if import_records:
            result["import"] = bench_import(workdir, storecast.grpc_target, import_records)
        return result
    finally:
        storecast.server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--import-records", type=int, default=10_000_000, help="rows of the CSV import (0: none)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="storecast-typed-") as workdir:
        print(json.dumps(bench_typed(Path(workdir), args.records, args.import_records), indent=2))


if __name__ == "__main__":
    main()
