"""CSV and Parquet files of a series, read in chunks and written in pieces, never whole in memory.

Layouts (series.py): production `timestamp,id,<attributes>`; forecasts and
commitments `creation_timestamp,id,timestamp,<vector attributes>,<period
attributes>`, one row per period; tariffs `id,timestamp,<attributes>`.
CSV columns are read as text and converted by arrow.py, so that a value
that is not a number reaches the API as it is and is refused with its
message; a CSV row the parser cannot split (a field too many or too few) is
a bad line of its own. An empty unquoted CSV field is null.
"""

from __future__ import annotations

import csv
import os
import shutil
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Literal

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from storecast.catalog import Kind
from storecast.client.arrow import arrow_schema, arrow_to_table, table_to_arrow
from storecast.client.series import Series
from storecast.client.table import Table

Format = Literal["csv", "parquet"]
FORMATS: tuple[Format, ...] = ("csv", "parquet")
_CSV_BLOCK_BYTES = 1 << 20


def file_format(path: Path, given: str | None = None) -> Format:
    """`given`, else by extension: .parquet/.pq is Parquet, anything else CSV."""
    if given is not None:
        if given not in FORMATS:
            raise ValueError(f"unknown format {given!r}: csv or parquet")
        return "parquet" if given == "parquet" else "csv"
    return "parquet" if path.suffix.lower() in (".parquet", ".pq") else "csv"


@dataclass
class Chunk:
    """Rows of the file as a table (Table.lines: their lines, or Parquet rows, from 1), and the CSV lines
    between them that could not be parsed, with why."""

    table: Table
    bad_lines: list[tuple[int, str]] = field(default_factory=list)


class FileReader:
    """Chunks of a file, and how many rows it holds (`rows`: None until known; for a CSV file, a thread
    counts its lines meanwhile, one buffer at a time)."""

    def __init__(self, path: Path, series: Series, fmt: Format, chunk_rows: int = 65_536) -> None:
        self.path = path
        self.series = series
        self.format = fmt
        self.chunk_rows = chunk_rows
        self.line_word = "line" if fmt == "csv" else "row"
        if fmt == "parquet":
            self._parquet = pq.ParquetFile(path)
            self.rows: int | None = self._parquet.metadata.num_rows
            self._check_columns(self._parquet.schema_arrow.names)
        else:
            self.rows = None
            with path.open(newline="", encoding="utf-8") as text:
                self._header = next(csv.reader(text), [])
            self._check_columns(self._header)
            threading.Thread(target=self._count_lines, name="count-lines", daemon=True).start()
        self.position = 0

    def _count_lines(self) -> None:
        lines = 0
        last = b"\n"
        with self.path.open("rb") as raw:
            while block := raw.read(1 << 22):
                lines += block.count(b"\n")
                last = block[-1:]
        self.rows = lines - (last == b"\n")  # the header, or a last line without its newline

    def _check_columns(self, names: list[str]) -> None:
        unknown = [name for name in names if name not in self.series.columns]
        missing = [name for name in self.series.key_columns if name not in names]
        if unknown or missing:
            problems = ([f"unknown column(s) {', '.join(unknown)}"] if unknown else []) + (
                [f"missing column(s) {', '.join(missing)}"] if missing else []
            )
            raise ValueError(f"{self.path}: {'; '.join(problems)}; {self.series} files have {','.join(self.series.columns)}")

    def __iter__(self) -> Iterator[Chunk]:
        return self._parquet_chunks() if self.format == "parquet" else self._csv_chunks()

    def _parquet_chunks(self) -> Iterator[Chunk]:
        for batch in self._parquet.iter_batches(batch_size=self.chunk_rows):
            lines = np.arange(self.position + 1, self.position + 1 + batch.num_rows, dtype=np.int64)
            self.position += batch.num_rows
            yield Chunk(arrow_to_table(self.series, batch, lines))

    def _csv_chunks(self) -> Iterator[Chunk]:
        skipped: list[tuple[int, str]] = []

        def invalid_row(row: pacsv.InvalidRow) -> Literal["skip"]:
            # The parser knows line numbers as it runs on one thread (use_threads=False below).
            skipped.append((row.number or 0, f"expected {row.expected_columns} fields, got {row.actual_columns}"))
            return "skip"

        with self.path.open("rb") as raw:
            reader = pacsv.open_csv(
                raw,
                # One thread keeps the parser's line numbers (of the rows it skips) known.
                read_options=pacsv.ReadOptions(use_threads=False, block_size=_CSV_BLOCK_BYTES),
                parse_options=pacsv.ParseOptions(invalid_row_handler=invalid_row, ignore_empty_lines=False),
                convert_options=pacsv.ConvertOptions(
                    column_types={name: pa.string() for name in self._header},
                    null_values=[""],
                    strings_can_be_null=True,
                    quoted_strings_can_be_null=False,
                ),
            )
            next_line = 2  # after the header
            taken = 0
            for batch in reader:
                lines = np.arange(next_line, next_line + batch.num_rows, dtype=np.int64)
                for line, _ in sorted(skipped[taken:]):
                    lines[lines >= line] += 1
                last = int(lines[-1]) if len(lines) else next_line - 1
                bad = sorted(entry for entry in skipped[taken:] if entry[0] <= last)
                taken += len(bad)
                next_line = last + 1
                self.position += batch.num_rows
                yield Chunk(arrow_to_table(self.series, batch, lines), bad)
            if skipped[taken:]:
                yield Chunk(Table.empty(self.series), sorted(skipped[taken:]))


class CsvSink:
    """Appends tables to a CSV file; every write is durable once `checkpoint` says so (each one)."""

    def __init__(self, path: Path, series: Series, *, offset: int | None = None, kinds: Mapping[str, Kind] | None = None) -> None:
        self.path = path
        self.schema = arrow_schema(series, None, kinds)
        if not offset or not path.exists():
            self._file: BinaryIO = path.open("wb")
            header = True
        else:
            self._file = path.open("r+b")
            self._file.truncate(offset)
            self._file.seek(offset)
            header = offset == 0
        self._writer = pacsv.CSVWriter(self._file, self.schema, write_options=pacsv.WriteOptions(include_header=header))

    def write(self, table: Table) -> None:
        if table.rows:
            self._writer.write_batch(table_to_arrow(table).cast(self.schema))

    def checkpoint(self) -> dict[str, Any] | None:
        """The state that a resumed export starts from: here, the file's length."""
        self._file.flush()
        os.fsync(self._file.fileno())
        return {"bytes": self._file.tell()}

    def complete(self) -> None:
        self._writer.close()
        self._file.close()

    def abort(self) -> None:
        self.complete()


class ParquetSink:
    """Writes tables into numbered part files beside the output (`<out>.parts/`), each closed after
    `part_rows` rows (a checkpoint); `close` joins them into the output, streaming, and removes them."""

    def __init__(
        self,
        path: Path,
        series: Series,
        *,
        parts: int | None = None,
        part_rows: int = 1_000_000,
        kinds: Mapping[str, Kind] | None = None,
    ) -> None:
        self.path = path
        self.schema = arrow_schema(series, None, kinds)
        self.directory = path.with_name(path.name + ".parts")
        self.part_rows = part_rows
        if parts is None:
            shutil.rmtree(self.directory, ignore_errors=True)
            parts = 0
        self.directory.mkdir(parents=True, exist_ok=True)
        for stale in self.directory.glob("part-*.parquet"):
            if int(stale.stem.removeprefix("part-")) >= parts:
                stale.unlink()
        self.parts = parts
        self._writer: pq.ParquetWriter | None = None
        self._rows = 0

    def write(self, table: Table) -> None:
        if not table.rows:
            return
        if self._writer is None:
            self._writer = pq.ParquetWriter(self.directory / f"part-{self.parts:05d}.parquet", self.schema)
            self._rows = 0
        self._writer.write_batch(table_to_arrow(table).cast(self.schema))
        self._rows += table.rows

    def checkpoint(self) -> dict[str, Any] | None:
        if self._writer is None or self._rows < self.part_rows:
            return None if self._writer is not None else {"parts": self.parts}
        self._writer.close()
        self._writer = None
        self.parts += 1
        return {"parts": self.parts}

    def abort(self) -> None:
        """Close the open part; a resumed export drops it (the state counts closed parts only)."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def complete(self) -> None:
        """Close the last part and join the parts into the output, streaming."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None
            self.parts += 1
        temporary = self.path.with_name(self.path.name + ".tmp")
        with pq.ParquetWriter(temporary, self.schema) as writer:
            for number in range(self.parts):
                part = pq.ParquetFile(self.directory / f"part-{number:05d}.parquet")
                for batch in part.iter_batches():
                    writer.write_batch(batch)
        temporary.replace(self.path)
        shutil.rmtree(self.directory, ignore_errors=True)
