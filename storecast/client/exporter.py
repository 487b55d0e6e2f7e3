"""`storecast export`: ids of a series into a CSV or Parquet file, read in units by a pool of workers.

A unit is one read without a cursor to keep between units: a time slice of
an equipment's records, a run of consecutive vintages of a forecast or
commitment id, or a whole tariff. Units are read in parallel and written in
order, so the file is sorted as the import expects (a vector's periods
together). The v1 API has no record count, so an equipment's slices are
planned from aggregated reads (max per bucket, each over the span the one
before found) that show where its records are, and sized as the export goes
from the rows per bucket (per vintage, for vectors) seen so far, so that a
unit holds about `batch_size` records.

`--resume` continues an interrupted export from the state file beside the
output (`<output>.export-state.json`), written after every unit made durable:
the CSV file's length, or the Parquet parts closed so far, and where the
next unit starts (id, then time or vintage).
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console

from storecast.client.client import Client
from storecast.client.errors import ApiError
from storecast.client.files import CsvSink, Format, ParquetSink
from storecast.client.progress import progress_bar
from storecast.client.query import Aggregation, Query, result_kinds
from storecast.client.series import READ_END_MS, Category, Series
from storecast.client.table import Table

# The buckets of the aggregated reads that find where an equipment's records are, and how many
# non-empty ones are enough to plan its slices.
_BUCKETS = 1024
_ENOUGH_BUCKETS = 128
_STATE_VERSION = 1


@dataclass(frozen=True)
class ExportSpec:
    """What to export: periods in [start, end[; vintages in [generated_after, generated_before[ (all of them),
    or the latest vector only; optionally aggregated."""

    start: int | None = None
    end: int | None = None
    generated_after: int | None = None
    generated_before: int | None = None
    latest: bool = False
    agg: Aggregation | None = None
    period_ms: int | None = None

    def query(self, **changes: Any) -> Query:
        options = {"start": self.start, "end": self.end, "agg": self.agg, "period": self.period_ms, **changes}
        return Query.of(**options)


@dataclass(frozen=True)
class Unit:
    id_index: int
    id: int
    query: Query
    # Where the id's export goes on after this unit (None: the id is done), and how many buckets/vintages it spans.
    cursor: dict[str, int] | None
    span: int


@dataclass
class ExportResult:
    records: int = 0
    units: int = 0
    seconds: float = 0.0
    skipped: list[str] = field(default_factory=list)
    already_complete: bool = False

    @property
    def rate(self) -> float:
        return self.records / self.seconds if self.seconds else 0.0


class _Density:
    """Rows per bucket (or per vintage) of the units read so far, to size the next ones."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.rows = 0
        self.spans = 0

    def add(self, rows: int, span: int) -> None:
        with self._lock:
            self.rows += rows
            self.spans += span

    def span_for(self, rows: int, remaining: int) -> int:
        """How many buckets (vintages) should hold about `rows` rows; 1 before anything was read, and at
        most twice what was read so far while that held no row."""
        with self._lock:
            if not self.spans:
                return 1
            if not self.rows:
                return min(remaining, 2 * self.spans)
            return max(1, min(remaining, int(rows * self.spans / self.rows)))


def state_path(output: Path) -> Path:
    return output.with_name(output.name + ".export-state.json")


class Exporter:
    def __init__(
        self,
        client: Client,
        site: int,
        series: Series,
        ids: list[int],
        output: Path,
        fmt: Format,
        spec: ExportSpec,
        *,
        batch_size: int = 50_000,
        workers: int = 4,
        parquet_part_rows: int = 1_000_000,
    ) -> None:
        self.client = client
        self.site = site
        self.series = series
        self.ids = ids
        self.output = output
        self.format = fmt
        self.spec = spec
        self.batch_size = batch_size
        self.workers = workers
        self.parquet_part_rows = parquet_part_rows
        self.density = _Density()
        self.fingerprint = {
            "version": _STATE_VERSION,
            "series": series.name,
            "site": site,
            "ids": ids,
            "format": fmt,
            "spec": asdict(spec),
        }

    # --- state ----------------------------------------------------------------

    def _load_state(self) -> dict[str, Any]:
        path = state_path(self.output)
        if not path.exists():
            raise ValueError(f"nothing to resume: no {path.name} beside {self.output}")
        state: dict[str, Any] = json.loads(path.read_text())
        if state.get("export") != self.fingerprint:
            raise ValueError(f"{path} is the state of another export: {json.dumps(state.get('export'))}")
        return state

    def _save_state(self, state: dict[str, Any]) -> None:
        path = state_path(self.output)
        temporary = path.with_name(path.name + ".tmp")
        temporary.write_text(json.dumps({"export": self.fingerprint, **state}))
        temporary.replace(path)

    # --- planning -------------------------------------------------------------

    def units(self, first_id: int, cursor: dict[str, int] | None, skipped: list[str]) -> Iterator[Unit]:
        for index in range(first_id, len(self.ids)):
            id = self.ids[index]
            try:
                yield from self._units_of(index, id, cursor if index == first_id else None)
            except ApiError as error:
                if error.status_code != 1107:
                    raise
                skipped.append(f"id {id}: {error.status_code} {error.status_message}")

    def _units_of(self, index: int, id: int, cursor: dict[str, int] | None) -> Iterator[Unit]:
        spec = self.spec
        if self.series.category is Category.TARIFF or (self.series.is_vector and spec.latest):
            yield Unit(index, id, spec.query(), None, 1)
            return
        if self.series.is_vector:
            after = (cursor or {}).get("generated_after", spec.generated_after or 0)
            vintages = self.client.vintages(self.site, self.series, id, after, spec.generated_before or READ_END_MS)
            position = 0
            while position < len(vintages):
                span = self.density.span_for(self.batch_size, len(vintages) - position)
                first, last = vintages[position], vintages[position + span - 1]
                position += span
                query = spec.query(generated_after=first, generated_before=last + 1, generate_all=True)
                yield Unit(index, id, query, None if position == len(vintages) else {"generated_after": last + 1}, span)
            return
        yield from self._production_units(index, id, cursor)

    def _production_units(self, index: int, id: int, cursor: dict[str, int] | None) -> Iterator[Unit]:
        spec = self.spec
        low = (cursor or {}).get("start", spec.start or 0)
        high = spec.end if spec.end is not None else READ_END_MS
        starts = self._bucket_starts(id, low, high)
        if not starts:
            yield Unit(index, id, spec.query(start=low, end=high), None, 1)
            return
        # Slice bounds at bucket starts (aligned to the user's period, so that no bucket is cut in two).
        align = spec.period_ms or 1
        position = 0
        start = low
        while position < len(starts):
            span = self.density.span_for(self.batch_size, len(starts) - position)
            position += span
            end = high if position == len(starts) else starts[position] // align * align
            if end <= start:
                continue  # within the bucket the slice starts in: the next slice takes these buckets too
            yield Unit(index, id, spec.query(start=start, end=end), None if end == high else {"start": end}, span)
            start = end

    def _bucket_starts(self, id: int, low: int, high: int) -> list[int]:
        """Starts of the non-empty buckets where the records of [low, high[ are: aggregated reads of
        `_BUCKETS` buckets, each over the span the previous one found, until it shows enough of them."""
        starts: list[int] = []
        while high > low:
            width = max(1000, math.ceil((high - low) / _BUCKETS / 1000) * 1000)
            query = Query.of(start=low, end=high, agg="max", period=width)
            table = self.client.read(self.site, self.series, id, query)
            starts = sorted(int(t) for t in table.columns["timestamp"].tolist())
            if len(starts) >= _ENOUGH_BUCKETS or width == 1000 or not starts:
                break
            low, high = max(low, starts[0]), min(high, starts[-1] + width)
        return [start for start in starts if start > low]

    # --- the run --------------------------------------------------------------

    def run(self, *, resume: bool = False, console: Console | None = None, show_progress: bool = True) -> ExportResult:
        console = console or Console(stderr=True, soft_wrap=True)
        result = ExportResult()
        started = time.monotonic()
        kinds = result_kinds(self.series, self.spec.query())
        if resume:
            state = self._load_state()
            if state.get("complete"):
                result.already_complete = True
                return result
        else:
            state = {"ids_done": 0, "cursor": None, "bytes": 0, "parts": 0, "records": 0, "complete": False}
            self._save_state(state)
        sink: CsvSink | ParquetSink
        if self.format == "csv":
            sink = CsvSink(self.output, self.series, offset=state["bytes"] if resume else None, kinds=kinds)
        else:
            sink = ParquetSink(
                self.output,
                self.series,
                parts=state["parts"] if resume else None,
                part_rows=self.parquet_part_rows,
                kinds=kinds,
            )
        records_before = int(state.get("records", 0))
        written = 0
        planned = 0
        pending: deque[tuple[Unit, Future[Table]]] = deque()
        completed = False
        try:
            with (
                progress_bar(console, show_progress) as progress,
                ThreadPoolExecutor(self.workers, thread_name_prefix="export") as pool,
            ):
                task = progress.add_task(f"export {self.output.name}", total=None, records=records_before)

                def read(unit: Unit) -> Table:
                    try:
                        table = self.client.read(self.site, self.series, unit.id, unit.query)
                    except ApiError as error:
                        if error.status_code != 1107:
                            raise
                        result.skipped.append(f"id {unit.id}: {error.status_code} {error.status_message}")
                        return Table.empty(self.series)
                    self.density.add(table.rows, unit.span)
                    return table

                def write_head() -> None:
                    nonlocal written
                    unit, future = pending.popleft()
                    table = future.result()
                    sink.write(table)
                    written += table.rows
                    result.units += 1
                    durable = sink.checkpoint()
                    if durable is not None:
                        done = unit.cursor is None
                        state.update(durable)
                        state.update(
                            ids_done=unit.id_index + 1 if done else unit.id_index,
                            cursor=None if done else unit.cursor,
                            records=records_before + written,
                        )
                        self._save_state(state)
                    progress.update(task, completed=result.units, total=planned, records=records_before + written)

                try:
                    for unit in self.units(int(state["ids_done"]), state.get("cursor"), result.skipped):
                        planned += 1
                        pending.append((unit, pool.submit(read, unit)))
                        while len(pending) > self.workers * 2 or (pending and pending[0][1].done()):
                            write_head()
                    while pending:
                        write_head()
                except BaseException:
                    for _, future in pending:
                        future.cancel()
                    raise
                progress.update(task, completed=result.units, total=planned)
            completed = True
        finally:
            if completed:
                sink.complete()
                state.update(ids_done=len(self.ids), cursor=None, records=records_before + written, complete=True)
                if self.format == "parquet":
                    state["parts"] = 0
                self._save_state(state)
            else:
                sink.abort()
        result.records = written
        result.seconds = time.monotonic() - started
        return result
