"""The usual line-protocol body, read a column at a time.

What Telegraf, an EMS or the bench sends is one measurement, the same tags and
the same float fields in the same order on every line, and a timestamp. In such
a body every line has the same separators (`,`, `=` and spaces) in the same
order: one `bytes.translate` that keeps only them checks that, and another that
turns every one into a comma makes the body a CSV of one shape, which Arrow's
CSV reader converts column by column in C++: measurement and keys as text
(one distinct word per column), ids, fields and timestamps as numbers. No
object per point or per field (storecast/packed.py writes the columns);
docs/api/extensions.md has the figures. Any body that is not exactly that
(another measurement or field set, escapes, quoted strings, integers,
booleans, a missing timestamp, a repeated (id, timestamp), a value out of
range) is left to the general reader (lines.py and mapping.py), which says
what is wrong with it or merges its points; both read a body they both accept
to the same records (tests/unit/test_influx_lines.py checks they agree).
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as csv

from storecast.catalog import EQUIPMENT_TYPES, TIMESTAMP_LIMIT_MS, UINT32_MAX, Kind, RecordType
from storecast.packed import double_column
from storecast.v1 import records_pb2

# A tag other than `id`; escapes are not in a uniform body.
_OTHER_TAG = r",[^ ,=#]+=[^ ,=]+"
_NAME = re.compile(r"[A-Za-z0-9_.\-]+")
_FIRST_LINE = re.compile(rf"([^ ,#=][^ ,=]*)((?:{_OTHER_TAG})*) ([^ ]+) (-?[0-9]+)")
_SEPARATORS = b", =\n"
_ALL_BUT_SEPARATORS = bytes(sorted(set(range(256)) - set(_SEPARATORS)))
# Bytes no uniform body holds: escapes, strings, comments, other line ends.
_ALL_BUT_SEPARATORS_AND_ODD_BYTES = bytes(sorted(set(range(256)) - set(_SEPARATORS + b'\\"#\r\t')))
_TO_COMMAS = bytes.maketrans(b" =", b",,")


@dataclass(frozen=True, slots=True)
class _Shape:
    """The first line's: its type, tag keys and fields (in line order), and its separators."""

    equipment: RecordType
    measurement: str
    tags: list[str]
    fields: list[str]
    separators: bytes

    @property
    def words(self) -> list[tuple[str, str]]:
        """Each comma-cut column of a translated line: (what it is, the word it must hold or its name)."""
        columns = [("word", self.measurement)]
        for tag in self.tags:
            columns += [("word", tag), ("id" if tag == "id" else "tag", tag)]
        for field in self.fields:
            columns += [("word", field), ("field", field)]
        return [*columns, ("timestamp", "")]


def uniform_batch(body: bytes, multiplier: int, divisor: int) -> tuple[RecordType, records_pb2.RecordBatch] | None:
    """The body's records as one batch, or None when the body is not uniform (the general reader's then)."""
    # Arrow reads a sign the general reader refuses in an id or a timestamp: those bodies are its.
    if b"id=-" in body or b"+" in body and (b" +" in body or b"id=+" in body):
        return None
    shape = _shape(body)
    if shape is None:
        return None
    try:
        return _read(body, shape, multiplier, divisor)
    except (pa.ArrowInvalid, UnicodeDecodeError):  # a line of another shape, a number the casts refuse
        return None


def _shape(body: bytes) -> _Shape | None:
    """From the first line: its type, tags and fields, when it is a line a uniform body may repeat."""
    end = body.find(b"\n")
    first = body[: end if end >= 0 else len(body)].decode("utf-8", errors="replace")
    found = _FIRST_LINE.fullmatch(first)
    if found is None:
        return None
    measurement, tags, field_set, _ = found.groups()
    equipment = EQUIPMENT_TYPES.get(measurement)
    if equipment is None:
        return None
    tag_names = [pair.split("=", 1)[0] for pair in tags.split(",")[1:]]
    if tag_names.count("id") != 1:
        return None
    fields = [pair.split("=", 1)[0] for pair in field_set.split(",")]
    kinds = {attribute.name: attribute.kind for attribute in equipment.attributes}
    if len(set(fields)) != len(fields) or any(kinds.get(name) is not Kind.FLOAT for name in fields):
        return None
    if not all(_NAME.fullmatch(name) for name in [*tag_names, *fields]):
        return None
    return _Shape(equipment, measurement, tag_names, fields, first.encode().translate(None, _ALL_BUT_SEPARATORS))


def _read(body: bytes, shape: _Shape, multiplier: int, divisor: int) -> tuple[RecordType, records_pb2.RecordBatch] | None:
    # Every line's separators, in order, are the first line's; an odd byte (an escape, a quote, a comment,
    # another line end) or a blank line is a difference too.
    found = body.translate(None, _ALL_BUT_SEPARATORS_AND_ODD_BYTES)
    lines = found.count(b"\n") + (not found.endswith(b"\n"))
    separators = (shape.separators + b"\n") * lines
    if found != (separators if found.endswith(b"\n") else separators[:-1]):
        return None
    words = shape.words
    names = [str(index) for index in range(len(words))]
    types = {"word": pa.string(), "tag": pa.string(), "id": pa.int64(), "field": pa.float64(), "timestamp": pa.int64()}
    table = csv.read_csv(
        io.BytesIO(body.translate(_TO_COMMAS)),
        read_options=csv.ReadOptions(column_names=names, use_threads=False),
        parse_options=csv.ParseOptions(delimiter=",", quote_char=False, escape_char=False, ignore_empty_lines=False),
        convert_options=csv.ConvertOptions(
            column_types={name: types[kind] for name, (kind, _) in zip(names, words)},
            null_values=[],
            strings_can_be_null=False,
        ),
    )
    given: dict[str, np.ndarray] = {}
    ids = stamps = np.empty(0, dtype=np.int64)
    for column, (kind, word) in zip(table.columns, words):
        # The first line's words are the shape's: one word in the column is that word on every line.
        if kind == "word" and pc.count_distinct(column).as_py() != 1:
            return None
        if kind == "tag" and pc.min(pc.utf8_length(column)).as_py() == 0:
            return None
        if kind in ("id", "timestamp", "field"):
            values = column.to_numpy()
            if kind == "id":
                ids = values
            elif kind == "timestamp":
                stamps = values
            else:
                given[word] = values
    if (ids < 0).any() or (ids > UINT32_MAX).any():
        return None
    # Timestamps in range before scaling (no overflow), then floored to the millisecond as the general reader does.
    highest = (TIMESTAMP_LIMIT_MS * divisor - 1) // multiplier
    if (stamps < 0).any() or (stamps > highest).any():
        return None
    millis = stamps * multiplier // divisor
    if _repeats_a_key(ids, millis):
        return None  # points to merge: the general reader merges them field by field
    if not all(np.isfinite(values).all() for values in given.values()):
        return None
    batch = records_pb2.RecordBatch(ids=ids.tolist(), timestamps=millis.tolist())
    names = [attribute.name for attribute in shape.equipment.attributes if attribute.name in given]  # catalog order
    batch.columns.extend(double_column(name, given[name]) for name in names)
    return shape.equipment, batch


def _repeats_a_key(ids: np.ndarray, millis: np.ndarray) -> bool:
    order = np.lexsort((millis, ids))
    ids, millis = ids[order], millis[order]
    return bool(((ids[1:] == ids[:-1]) & (millis[1:] == millis[:-1])).any())
