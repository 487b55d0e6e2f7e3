"""`storecast import`: a file into the store, in batches put by a pool of workers.

Each batch is one Put, atomic on the server: a batch the API refuses is not
stored at all, and is reported with the file, the line of the record the
API names and the API's message. Batches never split a forecast or
commitment vector (a vector Put replaces the whole vector), so a vector's
rows must be contiguous in the file, as `storecast export` writes them.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from rich.console import Console

from storecast.client.client import Client, entry_chunks
from storecast.client.errors import ApiError, StorecastError
from storecast.client.files import Chunk, FileReader
from storecast.client.progress import progress_bar
from storecast.client.series import Series
from storecast.client.table import Indices, RowError, Table


@dataclass
class Batch:
    table: Table
    # CSV lines within the batch's range that could not be parsed: the batch is not sent.
    bad_lines: list[tuple[int, str]] = field(default_factory=list)

    def line_range(self) -> tuple[int, int] | None:
        lines = [line for line, _ in self.bad_lines]
        if self.table.lines is not None and self.table.rows:
            lines += [int(self.table.lines.min()), int(self.table.lines.max())]
        return (min(lines), max(lines)) if lines else None


@dataclass
class Failure:
    """A batch not stored: where (the line at fault, else the batch's lines), and why."""

    path: Path
    line_word: str
    line: int | None
    lines: tuple[int, int] | None
    records: int
    message: str

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line is not None else f"{self.path}"
        batch = f"{self.line_word}s {self.lines[0]}-{self.lines[1]}" if self.lines else "its records"
        return f"{where}: {self.message} (batch of {self.records} records, {batch}, not stored)"


@dataclass
class ImportResult:
    records: int = 0
    batches: int = 0
    failures: list[Failure] = field(default_factory=list)
    seconds: float = 0.0
    stopped: bool = False

    @property
    def failed_records(self) -> int:
        return sum(failure.records for failure in self.failures)

    @property
    def rate(self) -> float:
        return self.records / self.seconds if self.seconds else 0.0


class NotContiguous(ValueError):
    """A vector's rows apart in the file: importing them would put the vector twice, the second replacing the first."""


def batches(chunks: Iterable[Chunk], series: Series, batch_size: int) -> Iterator[Batch]:
    """The file's rows as batches of about `batch_size` rows; a vector's rows always in one batch."""
    buffer: list[Table] = []
    buffered = 0
    pending_bad: list[tuple[int, str]] = []
    order = _KeyOrder(series)
    for chunk in chunks:
        pending_bad += chunk.bad_lines
        if not chunk.table.rows:
            continue
        order.check(chunk.table)
        buffer.append(chunk.table)
        buffered += chunk.table.rows
        if buffered < batch_size:
            continue
        table = Table.concat(series, buffer)
        # The last vector may go on in the next chunk: it waits.
        keep_from = _last_entry_start(table) if series.is_vector else table.rows - table.rows % batch_size
        head = table.slice(0, keep_from)
        for rows in entry_chunks(head, batch_size):
            yield _batch(head.take(rows), pending_bad)
        rest = table.slice(keep_from, table.rows)
        buffer, buffered = ([rest], rest.rows) if rest.rows else ([], 0)
    if buffer:
        table = Table.concat(series, buffer)
        for rows in entry_chunks(table, batch_size):
            yield _batch(table.take(rows), pending_bad)
    if pending_bad:
        yield Batch(Table.empty(series), pending_bad[:])
        pending_bad.clear()


def _batch(table: Table, pending_bad: list[tuple[int, str]]) -> Batch:
    """The batch, with the unparsable lines that came before its last line (taken from `pending_bad`)."""
    if not pending_bad or table.lines is None or not table.rows:
        return Batch(table)
    last = int(table.lines.max())
    mine = [entry for entry in pending_bad if entry[0] <= last]
    pending_bad[:] = [entry for entry in pending_bad if entry[0] > last]
    return Batch(table, mine)


def _last_entry_start(table: Table) -> int:
    """Where the last run of rows of one vector starts, in file order."""
    changed = _run_starts(table)
    return int(changed[-1]) if len(changed) else 0


def _run_starts(table: Table) -> Indices:
    keys = [table.columns[name] for name in table.series.entry_keys]
    changed = np.zeros(table.rows, dtype=bool)
    if table.rows:
        changed[0] = True
    for column in keys:
        changed[1:] |= column[1:] != column[:-1]
    return np.flatnonzero(changed).astype(np.intp)


class _KeyOrder:
    """Checks that the rows of each vector come together in the file."""

    def __init__(self, series: Series) -> None:
        self.series = series
        self.current: tuple[int, ...] | None = None
        self.current_last_line = 0
        # Each vector seen before the current one, and the last line it was on.
        self.finished: dict[tuple[int, ...], int] = {}

    def check(self, table: Table) -> None:
        if not self.series.is_vector or not table.rows:
            return
        for start in _run_starts(table).tolist():
            key = table.entry_key(start)
            if key == self.current:
                continue
            if key in self.finished and -1 not in key:
                raise NotContiguous(
                    f"line {table.line_of(start)}: the periods of vector id={key[0]}, creation_timestamp={key[1]} are apart "
                    f"in the file (it was on line {self.finished[key]} before); sort the file by id, creation_timestamp"
                )
            if self.current is not None:
                self.finished[self.current] = (table.line_of(start - 1) or 0) if start else self.current_last_line
            self.current = key
        self.current_last_line = table.line_of(table.rows - 1) or 0


def import_file(
    client: Client,
    site: int,
    series: Series,
    path: Path,
    reader: FileReader,
    *,
    batch_size: int = 10_000,
    workers: int = 4,
    max_failures: int = 10,
    console: Console | None = None,
    show_progress: bool = True,
) -> ImportResult:
    """Put the file's records in batches from `workers` threads; stop sending after `max_failures` failed batches."""
    console = console or Console(stderr=True, soft_wrap=True)
    result = ImportResult()
    started = time.monotonic()
    lock = threading.Lock()
    read_rows = 0
    in_flight: set[Future[int]] = set()

    with progress_bar(console, show_progress) as progress, ThreadPoolExecutor(workers, thread_name_prefix="import") as pool:
        task = progress.add_task(f"import {path.name}", total=None, records=0)

        def put(batch: Batch) -> int:
            def refused(line: int | None, message: str) -> _Refused:
                return _Refused(Failure(path, reader.line_word, line, batch.line_range(), batch.table.rows, message))

            if batch.bad_lines:
                line, why = batch.bad_lines[0]
                raise refused(line, f"cannot read the line: {why}")
            try:
                return client.put_table(site, batch.table)
            except ApiError as error:
                raise refused(error.line, f"{error.status_code} {error.status_message}") from None
            except RowError as error:
                raise refused(error.line, str(error)) from None
            except StorecastError as error:
                raise refused(None, str(error)) from None

        def settle(done: Iterable[Future[int]]) -> None:
            for future in done:
                in_flight.discard(future)
                try:
                    stored = future.result()
                except _Refused as refused:
                    with lock:
                        result.failures.append(refused.failure)
                    progress.console.print(f"[red]error[/red] {refused.failure}", markup=True, highlight=False)
                    continue
                with lock:
                    result.records += stored
                    result.batches += 1
                    records = result.records
                progress.update(task, completed=records + result.failed_records, total=reader.rows, records=records)

        try:
            for batch in batches(reader, series, batch_size):
                if len(result.failures) >= max_failures:
                    result.stopped = True
                    break
                read_rows += batch.table.rows
                while len(in_flight) >= workers * 2:
                    done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
                    settle(done)
                in_flight.add(pool.submit(put, batch))
        finally:
            settle(wait(in_flight).done)
        progress.update(task, completed=read_rows, total=read_rows, records=result.records)
    result.seconds = time.monotonic() - started
    return result


class _Refused(Exception):
    def __init__(self, failure: Failure) -> None:
        super().__init__(str(failure))
        self.failure = failure
