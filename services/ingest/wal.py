"""The ingest service's write-ahead log: a PUT is acknowledged once its bytes are on disk.

The log is a directory of segment files named by a growing sequence number
(`00000000000000000042.wal`). Each entry is framed as its length and CRC-32
(two little-endian uint32) followed by its bytes, so a torn or corrupt tail is
recognised and the replay stops there. Appends come from the services'
event loop (services/lib/rpc/server.py): one writer task at a time hands
whatever is waiting to the log's thread, which writes it in one `write` and
syncs it with one `fdatasync`, then again what arrived meanwhile. Concurrent
PUTs share a sync (group commit); a lone PUT waits for one sync of its own
(about 0.2-0.3 ms on this machine's disk).

The flusher seals the current segment before it inserts what the log holds
into the store, and releases (deletes) the sealed segments once every entry in
them is stored; at start every segment left is replayed, oldest first, so a
later write of a key is replayed after an earlier one and still wins.
"""

from __future__ import annotations

import asyncio
import errno
import fcntl
import logging
import os
import struct
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from zlib_ng import zlib_ng

from services.lib.rpc.metrics import WAL_SYNC_ENTRIES, WAL_SYNC_SECONDS

log = logging.getLogger("storecast.wal")

_FRAME = struct.Struct("<II")  # length, crc32
# zlib-ng's CRC-32 has zlib's values (logs written before it replay) at about ten times its speed.
_crc32 = zlib_ng.crc32
_SUFFIX = ".wal"
# The log holds production records only: forecasts, commitments and tariffs keep the group commit.
_SYNC_SECONDS = WAL_SYNC_SECONDS.labels("production")
_SYNC_ENTRIES = WAL_SYNC_ENTRIES.labels("production")
Swapped = TypeVar("Swapped")
# An entry waiting for the writer: its framed bytes, what to do once durable, and its outcome.
_Waiting = tuple[bytes, Callable[[], None], "asyncio.Future[BaseException | None]"]


class LogFull(Exception):
    """The log holds its maximum of unflushed bytes (the store is down or slow), or the disk is full."""


def _segment_name(sequence: int) -> str:
    return f"{sequence:020d}{_SUFFIX}"


def frame(entry: bytes) -> bytes:
    return _FRAME.pack(len(entry), _crc32(entry)) + entry


def read_segment(path: Path) -> Iterator[bytes]:
    """The entries of one segment, up to the first torn or corrupt one (logged)."""
    data = path.read_bytes()
    offset = 0
    while offset < len(data):
        if offset + _FRAME.size > len(data):
            log.warning("write-ahead log %s: torn entry header at byte %d; replay stops there", path.name, offset)
            return
        length, crc = _FRAME.unpack_from(data, offset)
        start, end = offset + _FRAME.size, offset + _FRAME.size + length
        if end > len(data) or _crc32(data[start:end]) != crc:
            log.warning("write-ahead log %s: torn or corrupt entry at byte %d; replay stops there", path.name, offset)
            return
        yield data[start:end]
        offset = end


class WriteAheadLog:
    """Segments in `directory`, at most `max_bytes` of them unreleased; `sync`: fdatasync each write."""

    def __init__(self, directory: Path, max_bytes: int, *, sync: bool = True) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        self._sync = sync
        directory.mkdir(parents=True, exist_ok=True)
        # One process per log: a second one would replay and release what the first acknowledged.
        self._lock_file = os.open(directory / "lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._lock_file)
            raise RuntimeError(f"the write-ahead log {directory} is in use by another process (STORECAST_LOG_DIR)") from None
        self._sealed: list[tuple[int, int]] = [(seq, size) for seq, size in self._segments()]  # (sequence, bytes)
        self._sequence = self._sealed[-1][0] + 1 if self._sealed else 1
        self._file = self._open(self._sequence)
        self._current_bytes = 0
        self._lock = threading.Lock()  # the current segment and the byte counts
        # The entries waiting and the task writing them: the event loop's alone.
        self._waiting: deque[_Waiting] = deque()
        self._writer: asyncio.Task[None] | None = None
        self._syncs = ThreadPoolExecutor(max_workers=1, thread_name_prefix="wal-sync")

    def _segments(self) -> list[tuple[int, int]]:
        found = []
        for path in self.directory.glob(f"*{_SUFFIX}"):
            stem = path.name[: -len(_SUFFIX)]
            if stem.isdigit():
                found.append((int(stem), path.stat().st_size))
        return sorted(found)

    def _open(self, sequence: int) -> int:
        fd = os.open(self.directory / _segment_name(sequence), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        if self._sync:
            # The new file's directory entry must survive a power loss too.
            dir_fd = os.open(self.directory, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        return fd

    @property
    def size_bytes(self) -> int:
        """Bytes of every segment not yet released."""
        with self._lock:
            return self._current_bytes + sum(size for _, size in self._sealed)

    def replay(self) -> Iterator[bytes]:
        """Every entry of the segments left by an earlier process, oldest first."""
        for sequence, _ in list(self._sealed):
            yield from read_segment(self.directory / _segment_name(sequence))

    async def append(self, entry: bytes, durable: Callable[[], None]) -> None:
        """Returns once `entry` is durable; raises LogFull (nothing of it is kept) or the write's error.

        `durable` runs once the entry is synced, in log order, under the lock `seal` takes:
        what it records (the flusher's buffer) holds exactly the entries of the segments
        not sealed yet."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[BaseException | None] = loop.create_future()
        self._waiting.append((frame(entry), durable, done))
        if self._writer is None:
            self._writer = loop.create_task(self._write_waiting())
        error = await done
        if error is not None:
            raise error

    async def _write_waiting(self) -> None:
        """Writes what waits, and again what arrived meanwhile, until nothing waits."""
        loop = asyncio.get_running_loop()
        try:
            while self._waiting:
                batch = list(self._waiting)
                self._waiting.clear()
                try:
                    outcomes = await loop.run_in_executor(self._syncs, self._write, batch)
                except BaseException as error:  # each entry of the batch gets it
                    outcomes = [error] * len(batch)
                for (_, _, done), outcome in zip(batch, outcomes, strict=True):
                    if not done.done():  # its caller went away: the entry is kept all the same
                        done.set_result(outcome)
        finally:
            self._writer = None

    def _write(self, batch: list[_Waiting]) -> list[BaseException | None]:
        """In the log's thread: each entry's outcome, in batch order."""
        outcomes: list[BaseException | None] = []
        with self._lock:
            room = self.max_bytes - self._current_bytes - sum(size for _, size in self._sealed)
            accepted: list[_Waiting] = []
            for waiting in batch:
                if len(waiting[0]) <= room or not (accepted or self._current_bytes or self._sealed):
                    accepted.append(waiting)
                    room -= len(waiting[0])
                    outcomes.append(None)
                else:
                    outcomes.append(LogFull(f"the write-ahead log holds its maximum of {self.max_bytes} bytes"))
            if accepted:
                started = time.perf_counter()
                error = self._write_synced(b"".join(framed for framed, _, _ in accepted))
                _SYNC_SECONDS.observe(time.perf_counter() - started)
                _SYNC_ENTRIES.observe(len(accepted))
                if error is None:
                    for _, durable, _ in accepted:
                        durable()
                else:
                    outcomes = [outcome if outcome is not None else error for outcome in outcomes]
        return outcomes

    def _write_synced(self, data: bytes) -> BaseException | None:
        try:
            self._write_all(data)
            if self._sync:
                os.fdatasync(self._file)
        except OSError as raised:
            self._undo_partial_write()
            return LogFull(f"the write-ahead log's disk is full: {raised}") if raised.errno == errno.ENOSPC else raised
        self._current_bytes += len(data)
        return None

    def _write_all(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            written = os.write(self._file, view)
            view = view[written:]

    def _undo_partial_write(self) -> None:
        """After a failed write the segment ends where it ended before: nothing half-written is replayed."""
        try:
            os.ftruncate(self._file, self._current_bytes)
        except OSError:
            log.exception("write-ahead log: could not truncate a failed write; the replay will stop at it")

    def seal(self, swap: Callable[[], Swapped]) -> tuple[int, Swapped]:
        """Close the current segment (if it holds anything) and, atomically with it, `swap`
        out what the entries so far recorded; returns the newest sealed sequence number."""
        with self._lock:
            if self._current_bytes:
                os.close(self._file)
                self._sealed.append((self._sequence, self._current_bytes))
                self._sequence += 1
                self._file = self._open(self._sequence)
                self._current_bytes = 0
            return (self._sealed[-1][0] if self._sealed else 0), swap()

    def release(self, through: int) -> None:
        """Delete the sealed segments up to `through`: everything in them is in the store."""
        with self._lock:
            released = [seq for seq, _ in self._sealed if seq <= through]
            self._sealed = [(seq, size) for seq, size in self._sealed if seq > through]
        for sequence in released:
            (self.directory / _segment_name(sequence)).unlink(missing_ok=True)

    def close(self) -> None:
        self._syncs.shutdown()
        with self._lock:
            os.close(self._file)
            os.close(self._lock_file)
