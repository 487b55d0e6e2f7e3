"""Memory bounds of `storecast serve all` (services and the embedded store in
one process, the gateway in a child process) at the production limits: a PUT at the 32 MiB body
limit, and reads matching millions of records, answered with max_records
(100000).

The peak is the kernel's VmHWM, reset through /proc/<pid>/clear_refs just
before each measured request; the growth is that peak minus the RSS just
before, summed over the process and its children. `make test` stores two bodies at the limit (~1.9M records);
`make soak` sets STORECAST_MEMORY_PUTS higher. Run with -s to see the
measurements.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest

from tests.conftest import Pki, Storecast, ok, start_storecast, stop_storecast
from tests.helpers import T0, raw_put

MiB = 1024 * 1024
# The production limits (the defaults, storecast/env.py), not the suite's small ones (tests.conftest).
DEFAULT_MAX_BODY_BYTES = 32 * MiB
DEFAULT_MAX_RECORDS = 100_000
PUTS = int(os.environ.get("STORECAST_MEMORY_PUTS", "2"))
# One second apart, so that agg with period=1s has one bucket per record.
STEP_MS = 1000

# Measured on the 2-core, 24 GiB dev machine: a PUT at the limit (958697
# records) grows a fresh process by 350-420 MiB (the body in the gateway and in
# gRPC, its records' bytes located, then decoded a slice at a time into
# columns, the log's entry, the Native block, the engine's insert; 490-570 MiB
# when the body was decoded whole, a struct per record); reading 100000 of 1.9M or 3.8M matching meter records (8 MB of
# JSON) by 40-110 MiB, the same for both. An aggregation over a bucket per
# record held every bucket before it was cut at max_records: 331 MiB over
# 1.9M records, and growing with them. The bounds leave room for the allocator.
PUT_BOUND = 1024 * MiB
GET_BOUND = 256 * MiB

Result = TypeVar("Result")


def _status(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{key}:"):
            return int(line.split()[1]) * 1024
    raise KeyError(key)


def process_tree(pid: int) -> list[int]:
    """The process and its descendants."""
    tree, pending = [], [pid]
    while pending:
        current = pending.pop()
        tree.append(current)
        for task in Path(f"/proc/{current}/task").iterdir():
            pending += [int(child) for child in (task / "children").read_text().split()]
    return tree


def peak_growth(pid: int, action: Callable[[], Result]) -> tuple[Result, int]:
    """What `action` returns, and how far the resident memory of the process and
    its children rose above where it was (each one's peak, added up)."""
    tree = process_tree(pid)
    before = sum(_status(member, "VmRSS") for member in tree)
    for member in tree:
        Path(f"/proc/{member}/clear_refs").write_text("5")  # VmHWM := VmRSS
    result = action()
    return result, sum(_status(member, "VmHWM") for member in tree) - before


def body_at_the_limit(first: int) -> tuple[bytes, int]:
    """The most meter records from index `first` on that fit in DEFAULT_MAX_BODY_BYTES, and how many."""
    head, tail = b'{"values":[', b"]}"
    records: list[bytes] = []
    size = len(head) + len(tail) - 1  # no comma before the first record
    while True:
        record = b'{"timestamp":%d,"id":1}' % (T0 + (first + len(records)) * STEP_MS)
        if size + len(record) + 1 > DEFAULT_MAX_BODY_BYTES:
            return head + b",".join(records) + tail, len(records)
        records.append(record)
        size += len(record) + 1


def start_at_the_limits(directory: Path, test_pki: Pki) -> Storecast:
    instance = start_storecast(
        directory,
        test_pki,
        {"STORECAST_MAX_BODY_BYTES": str(DEFAULT_MAX_BODY_BYTES), "STORECAST_MAX_RECORDS": str(DEFAULT_MAX_RECORDS)},
    )
    if not Path(f"/proc/{instance.process.pid}/clear_refs").exists():
        stop_storecast(instance)
        pytest.skip("needs Linux's /proc/<pid>/clear_refs")
    return instance


def test_puts_at_the_body_limit_and_reads_of_millions_stay_bounded(tmp_path: Path, test_pki: Pki) -> None:
    writer = start_at_the_limits(tmp_path, test_pki)
    pid = writer.process.pid
    print(f"\nidle: RSS {sum(_status(member, 'VmRSS') for member in process_tree(pid)) / MiB:.0f} MiB")
    stored = 0
    try:
        with writer.client("admin") as admin:
            for _ in range(PUTS):
                body, count = body_at_the_limit(stored)
                response, growth = peak_growth(pid, lambda: raw_put(admin, "/v1/1/production/meter", body))
                assert response.status_code == 201, response.text
                stored += count
                print(f"PUT {len(body)} bytes, {count} records: peak growth {growth / MiB:.0f} MiB")
                assert growth < PUT_BOUND
    finally:
        stop_storecast(writer)

    # A fresh process: memory the PUTs freed but kept would hide what the reads take.
    reader = start_at_the_limits(tmp_path, test_pki)
    pid = reader.process.pid
    end = T0 + stored * STEP_MS
    # The read that once held a bucket per record comes first, before other reads leave memory to reuse.
    reads: list[dict[str, str | int]] = [
        {"from": T0, "to": end, "agg": "avg", "period": "1s"},
        {"from": T0, "to": end, "agg": "max", "period": "1h"},
        {"from": T0, "to": end},
        {},
    ]
    try:
        with reader.client("admin") as admin:
            # What any first read costs (the engine's pools, the table's index) is not what this measures.
            ok(admin.get("/v1/1/production/meter/1", params={"from": T0, "to": T0 + 1}))
            for params in reads:
                response, growth = peak_growth(pid, lambda: admin.get("/v1/1/production/meter/1", params=params))
                print(
                    f"GET {params or 'all'} over {stored} records: {response.status_code},"
                    f" {len(response.content)} bytes, peak growth {growth / MiB:.0f} MiB"
                )
                assert response.status_code in (200, 206)
                assert growth < GET_BOUND
            # The cap holds: max_records of the millions matched, and where to go on.
            partial = admin.get("/v1/1/production/meter/1")
            assert partial.status_code == 206
            assert len(partial.json()["results"]) == DEFAULT_MAX_RECORDS
            assert partial.json()["next_from"] == T0 + DEFAULT_MAX_RECORDS * STEP_MS
    finally:
        stop_storecast(reader)
