"""PUT bodies of the vector categories, decoded and validated, as insert columns.

Forecast and commitment vectors become one row each, their periods sorted
into parallel arrays; tariff entries become one row per period.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import msgspec
import numpy as np

from services.lib.records import payload, rules, typed
from services.lib.records.columns import Columns, Entries, last_occurrences, take, to_columns
from services.lib.store.schema import PERIOD_TIMESTAMPS, Table, period_column
from storecast.catalog import RecordType
from storecast.v1 import records_pb2


def _period_struct(name: str, record_type: RecordType) -> type[msgspec.Struct]:
    return payload.record_struct(f"{name}_period", [("timestamp", payload.Timestamp)], record_type)


def _by_vector(layout: Entries, stamps: np.ndarray, attributes: Sequence[list[Any]], order: np.ndarray | None) -> Columns:
    """Period columns (timestamps, then attributes) cut into one list per vector, rows in `order` (None: as they are)."""
    if order is None:
        bounds = list(zip(layout.starts.tolist(), layout.ends.tolist()))
        return [[column[start:end] for start, end in bounds] for column in [stamps.tolist(), *attributes]]
    ordered = [stamps[order], *(np.array(column, dtype=object)[order] for column in attributes)]
    return [[part.tolist() for part in np.split(column, layout.ends[:-1])] for column in ordered]


class VectorWriter:
    """Forecast vectors of one type, or commitment vectors: one row per vector."""

    def __init__(self, table: Table, record_type: RecordType) -> None:
        self.table = table
        self._record_type = record_type
        vector = msgspec.defstruct(
            table.name,
            [
                ("creation_timestamp", payload.Timestamp),
                ("id", payload.Uint32),
                payload.periods_field(_period_struct(table.name, record_type)),
                *payload.optional_fields(record_type.vector_attributes),
            ],
            forbid_unknown_fields=True,
        )
        self._decoder = payload.body_decoder(vector, table.name)
        self._vector_fields = ["id", "creation_timestamp", *(a.name for a in record_type.vector_attributes)]
        self._period_fields = ["timestamp", *(a.name for a in record_type.attributes)]
        self.column_names = [
            "site_id",
            *self._vector_fields,
            PERIOD_TIMESTAMPS,
            *(period_column(a.name) for a in record_type.attributes),
        ]

    def columns(self, site_id: int, body: bytes) -> Columns:
        vectors = payload.decode(self._decoder, body)
        periods = [to_columns(v.values, self._period_fields) for v in vectors]
        layout = Entries.ending(np.cumsum([len(v.values) for v in vectors]))
        stamps = np.fromiter(itertools.chain.from_iterable(p[0] for p in periods), np.int64, int(layout.ends[-1]))
        order = rules.period_order(stamps, layout)
        # One column per period field, each holding one array per vector: as given, unless out of time order.
        by_vector: Columns = [list(arrays) for arrays in zip(*periods)]
        if order is not None:
            attributes = [list(itertools.chain.from_iterable(arrays)) for arrays in by_vector[1:]]
            by_vector = _by_vector(layout, stamps, attributes, order)
        columns = to_columns(vectors, self._vector_fields) + by_vector
        # Within one request the last occurrence of (id, creation_timestamp) wins, whole.
        kept = last_occurrences(columns[0], columns[1])
        if kept is not None:
            columns = take(columns, kept)
        return [[site_id] * len(columns[0]), *columns]

    def batch_columns(self, site_id: int, batch: records_pb2.RecordBatch) -> Columns:
        """The same columns from typed input: one entry per vector, one row per period."""
        typed.check_empty(batch)
        vectors, rows = len(batch.ids), len(batch.timestamps)
        typed.check_length("creation_timestamps", len(batch.creation_timestamps), vectors, "entries")
        layout = typed.entries(batch, rows)
        creation = typed.timestamps(batch.creation_timestamps, _vector_path, "creation_timestamp")
        stamps = typed.timestamps(batch.timestamps, layout.path)
        periods = typed.attributes(batch.columns, self._record_type.attributes, rows, layout.path)
        vector_values = typed.attributes(batch.entry_columns, self._record_type.vector_attributes, vectors, _vector_path)
        columns: Columns = [
            np.array(batch.ids, dtype=np.uint32),
            creation,
            *(a.as_list() for a in vector_values),
            *_by_vector(layout, stamps, [a.as_list() for a in periods], rules.period_order(stamps, layout)),
        ]
        # The last occurrence of (id, creation_timestamp) wins, whole, as in JSON.
        kept = last_occurrences(columns[0], columns[1])
        if kept is not None:
            columns = take(columns, kept)
        return [[site_id] * len(columns[0]), *columns]


def _vector_path(vector: int) -> str:
    return f"values[{vector}]"


class TariffWriter:
    """Tariff entries {"id", "values": [periods]}: one row per period, keyed (id, timestamp)."""

    def __init__(self, table: Table, record_type: RecordType) -> None:
        self.table = table
        self._record_type = record_type
        entry = msgspec.defstruct(
            table.name,
            [("id", payload.Uint32), payload.periods_field(_period_struct(table.name, record_type))],
            forbid_unknown_fields=True,
        )
        self._decoder = payload.body_decoder(entry, table.name)
        self._period_fields = ["timestamp", *(a.name for a in record_type.attributes)]
        self.column_names = ["site_id", "id", *self._period_fields]

    def columns(self, site_id: int, body: bytes) -> Columns:
        entries = payload.decode(self._decoder, body)
        per_entry = [to_columns(entry.values, self._period_fields) for entry in entries]
        ids = [entry.id for entry, periods in zip(entries, per_entry) for _ in periods[0]]
        columns: Columns = [ids, *(list(itertools.chain.from_iterable(c)) for c in zip(*per_entry))]
        # Within one request the last occurrence of (id, timestamp) wins, as for production records.
        kept = last_occurrences(columns[0], columns[1])
        if kept is not None:
            columns = take(columns, kept)
        return [[site_id] * len(columns[0]), *columns]

    def batch_columns(self, site_id: int, batch: records_pb2.RecordBatch) -> Columns:
        """The same columns from typed input: one entry per tariff id, one row per period."""
        typed.check_empty(batch)
        typed.no_fields(batch, ("creation_timestamps", "entry_columns"), "tariffs")
        rows = len(batch.timestamps)
        layout = typed.entries(batch, rows)
        ids = np.repeat(np.array(batch.ids, dtype=np.uint32), layout.counts)
        stamps = typed.timestamps(batch.timestamps, layout.path)
        periods = typed.attributes(batch.columns, self._record_type.attributes, rows, layout.path)
        columns: Columns = [ids, stamps, *(a.as_list() for a in periods)]
        kept = last_occurrences(columns[0], columns[1])
        if kept is not None:
            columns = take(columns, kept)
        return [[site_id] * len(columns[0]), *columns]
