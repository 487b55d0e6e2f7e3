"""The write-ahead log's segments: order, seal and release, torn and corrupt tails, limits, disk full."""

from __future__ import annotations

import asyncio
import functools
import os
import struct
import zlib
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from services.ingest.wal import LogFull, WriteAheadLog, frame, read_segment


def _appended(wal: WriteAheadLog, entries: list[bytes], seen: list[bytes]) -> None:
    asyncio.run(_append_each(wal, entries, seen))


async def _append_each(wal: WriteAheadLog, entries: list[bytes], seen: list[bytes]) -> None:
    for entry in entries:
        await wal.append(entry, functools.partial(seen.append, entry))


def _segments(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.wal"))


def test_entries_come_back_in_order_across_segments_and_a_restart(tmp_path: Path) -> None:
    wal = WriteAheadLog(tmp_path, 1 << 20)
    seen: list[bytes] = []
    _appended(wal, [b"a", b"b"], seen)
    sealed, taken = wal.seal(lambda: list(seen))
    _appended(wal, [b"c"], seen)
    assert taken == [b"a", b"b"] and seen == [b"a", b"b", b"c"] and sealed == 1
    wal.close()
    again = WriteAheadLog(tmp_path, 1 << 20)
    assert list(again.replay()) == [b"a", b"b", b"c"]


def test_a_segment_framed_with_zlibs_crc_replays(tmp_path: Path) -> None:
    """Segments written before the log took zlib-ng's CRC-32 (zlib's, the same values) replay as they were."""
    entries = [b"first entry", bytes(range(256)) * 300]
    (tmp_path / "00000000000000000001.wal").write_bytes(
        b"".join(struct.pack("<II", len(entry), zlib.crc32(entry)) + entry for entry in entries)
    )
    assert list(read_segment(tmp_path / "00000000000000000001.wal")) == entries
    assert [frame(entry) for entry in entries] == [struct.pack("<II", len(e), zlib.crc32(e)) + e for e in entries]


def test_release_deletes_only_sealed_segments_up_to_the_one_named(tmp_path: Path) -> None:
    wal = WriteAheadLog(tmp_path, 1 << 20)
    _appended(wal, [b"first"], [])
    first, _ = wal.seal(lambda: None)
    _appended(wal, [b"second"], [])
    second, _ = wal.seal(lambda: None)
    _appended(wal, [b"third"], [])
    wal.release(first)
    assert [p.name for p in _segments(tmp_path)] == [f"{second:020d}.wal", f"{second + 1:020d}.wal"]
    assert wal.size_bytes == len(frame(b"second")) + len(frame(b"third"))
    wal.close()
    assert list(WriteAheadLog(tmp_path, 1 << 20).replay()) == [b"second", b"third"]


@pytest.mark.parametrize("damage", ["torn header", "torn body", "corrupt body"])
def test_a_damaged_last_entry_stops_the_replay_there(tmp_path: Path, damage: str) -> None:
    wal = WriteAheadLog(tmp_path, 1 << 20)
    _appended(wal, [b"kept-1", b"kept-2", b"the-last-one"], [])
    wal.close()
    [segment] = _segments(tmp_path)
    data = segment.read_bytes()
    if damage == "torn header":
        data += b"\x07\x00"
    elif damage == "torn body":
        data = data[:-3]
    else:
        data = data[:-1] + b"X"
    segment.write_bytes(data)
    assert list(read_segment(segment)) == [b"kept-1", b"kept-2"] + ([b"the-last-one"] if damage == "torn header" else [])
    again = WriteAheadLog(tmp_path, 1 << 20)
    assert list(again.replay())[:2] == [b"kept-1", b"kept-2"]


def test_an_empty_segment_replays_nothing(tmp_path: Path) -> None:
    (tmp_path / f"{7:020d}.wal").write_bytes(b"")
    wal = WriteAheadLog(tmp_path, 1 << 20)
    assert list(wal.replay()) == []
    _appended(wal, [b"after"], [])
    wal.close()
    assert list(WriteAheadLog(tmp_path, 1 << 20).replay()) == [b"after"]


def test_a_full_log_refuses_and_keeps_nothing_of_the_refused_entry(tmp_path: Path) -> None:
    wal = WriteAheadLog(tmp_path, len(frame(b"x" * 100)) + 10)
    seen: list[bytes] = []
    _appended(wal, [b"x" * 100], seen)
    with pytest.raises(LogFull):
        _appended(wal, [b"y" * 100], seen)
    assert seen == [b"x" * 100]
    sealed, _ = wal.seal(lambda: None)
    wal.release(sealed)  # once flushed, there is room again
    _appended(wal, [b"y" * 100], seen)
    wal.close()
    assert list(WriteAheadLog(tmp_path, 1 << 20).replay()) == [b"y" * 100]


def test_a_full_disk_refuses_with_log_full_and_acknowledges_nothing(tmp_path: Path) -> None:
    wal = WriteAheadLog(tmp_path, 1 << 20)
    _appended(wal, [b"before"], [])
    # Every write to /dev/full fails with ENOSPC, as on a full disk.
    os.close(wal._file)
    wal._file = os.open("/dev/full", os.O_WRONLY)
    seen: list[bytes] = []
    with pytest.raises(LogFull, match="disk is full"):
        _appended(wal, [b"refused"], seen)
    assert seen == []
    assert list(read_segment(_segments(tmp_path)[-1])) == [b"before"]


def test_concurrent_writers_share_syncs_and_each_entry_is_acknowledged_once(tmp_path: Path) -> None:
    entries_before, syncs_before = _sync_counts()
    wal = WriteAheadLog(tmp_path, 1 << 24)
    seen: list[bytes] = []

    async def writers() -> None:
        await asyncio.gather(*(_append_each(wal, [f"{t}-{i}".encode() for i in range(50)], seen) for t in range(8)))

    asyncio.run(writers())
    wal.close()
    replayed = list(WriteAheadLog(tmp_path, 1 << 24).replay())
    # The durable callbacks ran in log order: what they recorded is the log.
    assert replayed == seen and len(set(seen)) == 400
    # The metrics count every entry once, over fewer syncs than entries: the writers overlapped.
    entries, syncs = _sync_counts()
    assert entries - entries_before == 400
    assert 0 < syncs - syncs_before < 400


def _sync_counts() -> tuple[float, float]:
    """storecast_wal_entries_per_fsync's sum (entries made durable) and count (syncs)."""
    entries = REGISTRY.get_sample_value("storecast_wal_entries_per_fsync_sum", {"kind": "production"}) or 0.0
    syncs = REGISTRY.get_sample_value("storecast_wal_fsync_duration_seconds_count", {"kind": "production"}) or 0.0
    return entries, syncs


def test_a_second_process_cannot_open_a_log_in_use(tmp_path: Path) -> None:
    WriteAheadLog(tmp_path, 1 << 20)
    with pytest.raises(RuntimeError, match="in use"):
        WriteAheadLog(tmp_path, 1 << 20)
