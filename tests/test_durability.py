"""A 201 means on disk: the write-ahead log's entry, or (log off, and for vectors) the inserted
part's files and its directory, are synced before the answer.

kill -9 cannot show this (the kernel keeps the page cache), so the serving process's
sync calls are traced with strace while one PUT goes through.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from services.lib.store.schema import PENDING_TABLE, PRODUCTION_TABLES, ROLLUP_TABLES
from tests.conftest import Pki, ok, put, start_storecast, stop_storecast
from tests.helpers import T0

# strace -ttt -y: "<tid> <epoch seconds> fdatasync(<fd></path>) = 0", or "... <unfinished ...>" when
# another thread's line comes between the call and its return; the call's time is what counts.
_SYNC = re.compile(r"^\d+\s+(?P<at>\d+\.\d+) (?:fsync|fdatasync)\(\d+<(?P<path>[^>]+)>")
# A part being written is tmp_insert_<name>, renamed to <name> once complete (tables live under UUIDs).
_PART = re.compile(r"/(?:tmp_insert_)?all_\d+_\d+_\d+$")
_PART_FILE = re.compile(r"/(?:tmp_insert_)?all_\d+_\d+_\d+/[^/]+\.(?:bin|txt|cidx)$")


def _traced_puts(tmp_path: Path, test_pki: Pki, env: dict[str, str], puts: int) -> tuple[list[tuple[float, float]], str]:
    """Each PUT's (sent, acknowledged) times, and the strace of the serving process meanwhile."""
    (tmp_path / "server").mkdir()
    instance = start_storecast(tmp_path / "server", test_pki, env)
    trace = tmp_path / "strace.log"
    tracer = subprocess.Popen(
        ["strace", "-f", "-ttt", "-y", "-e", "trace=fsync,fdatasync", "-o", str(trace), "-p", str(instance.process.pid)],
        stderr=subprocess.DEVNULL,
    )
    times = []
    try:
        time.sleep(2)  # strace attaches to every thread of the process
        with instance.client("admin") as admin:
            for n in range(puts):
                records = [{"timestamp": T0 + n * 100 + i, "id": 1, "p": float(i)} for i in range(100)]
                sent = time.time()
                ok(put(admin, "/v1/1/production/meter", records), 201)
                times.append((sent, time.time()))
        time.sleep(1)
    finally:
        tracer.terminate()
        tracer.wait(timeout=30)
        stop_storecast(instance)
    return times, trace.read_text()


@pytest.mark.skipif(shutil.which("strace") is None, reason="strace is not installed")
def test_every_put_syncs_the_write_ahead_log_before_its_201(tmp_path: Path, test_pki: Pki) -> None:
    times, trace = _traced_puts(tmp_path, test_pki, {}, puts=5)
    log_syncs = [float(m["at"]) for line in trace.splitlines() if (m := _SYNC.match(line)) and m["path"].endswith(".wal")]
    for sent, acknowledged in times:
        assert any(sent < at < acknowledged for at in log_syncs), (sent, acknowledged, log_syncs, trace[-3000:])


@pytest.mark.skipif(shutil.which("strace") is None, reason="strace is not installed")
def test_with_the_log_off_a_put_is_synced_to_disk_before_its_201(tmp_path: Path, test_pki: Pki) -> None:
    [(_, acknowledged)], trace = _traced_puts(tmp_path, test_pki, {"STORECAST_LOG": "0"}, puts=1)
    syncs = [(float(m["at"]), m["path"]) for line in trace.splitlines() if (m := _SYNC.match(line))]
    # Each part's syncs, by part directory: its files' and its own.
    parts: dict[str, list[tuple[float, str]]] = {}
    for at, path in syncs:
        if directory := _PART.search(path) or _PART_FILE.search(path):
            part = path[: directory.start()] + "/" + path[directory.start() + 1 :].split("/")[0].removeprefix("tmp_insert_")
            parts.setdefault(part, []).append((at, path))
    # The parts this PUT synced before its 201 (its records) were synced whole before it: no
    # part begun before the 201 had a sync after it. (The pending mark of its rollup cells and
    # the cells are not synced: services/lib/reads/rollup.py rebuilds them after a power loss.)
    written = {part: calls for part, calls in parts.items() if min(at for at, _ in calls) < acknowledged}
    assert any(path.endswith("/data.bin") for calls in written.values() for _, path in calls), trace[-3000:]
    assert all(_PART.search(path) for calls in written.values() for _, path in calls if not _PART_FILE.search(path))
    for part, calls in written.items():
        assert any(_PART.search(path) for _, path in calls), (part, calls)  # the directory itself
        assert all(at < acknowledged for at, _ in calls), (acknowledged, part, calls)


def test_the_schema_turns_the_engine_fsyncs_on_or_off() -> None:
    on, off = PRODUCTION_TABLES["meter"].ddl("db", fsync=True)[-1], PRODUCTION_TABLES["meter"].ddl("db", fsync=False)[-1]
    assert on == "ALTER TABLE db.production_meter MODIFY SETTING fsync_after_insert = 1, fsync_part_directory = 1"
    assert off.endswith("fsync_after_insert = 0, fsync_part_directory = 0")
    assert "fsync" not in " ".join(PRODUCTION_TABLES["meter"].ddl("db"))
    # Rollup cells and pending marks are rebuilt after a power loss on a single node (services/lib/reads/rollup.py).
    for rebuilt in (ROLLUP_TABLES["meter"], PENDING_TABLE):
        assert rebuilt.ddl("db", fsync=True)[-1].endswith("fsync_after_insert = 0, fsync_part_directory = 0")
        assert rebuilt.ddl("db", "c", fsync=True)[-1].endswith("fsync_after_insert = 1, fsync_part_directory = 1")
