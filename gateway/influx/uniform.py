"""The usual line-protocol body, read a column at a time.

What Telegraf, an EMS or the bench sends is one measurement, the same tags and
the same float fields in the same order on every line, and a timestamp. Such a
body is cut at its commas by Arrow's CSV reader, in C++: each column of the
result holds, on every line, the same tag or field (or two of them, where the
line has a space). Arrow's compute functions then check each column's key and
convert its values: no object per point or per field, about a fifth of the time
of a regular expression over the text (docs/api/extensions.md). Any body that
is not exactly that (another measurement or field set, escapes, quoted
strings, integers, booleans, a missing timestamp, a repeated (id, timestamp),
a value out of range) is left to the general reader (lines.py and mapping.py),
which says what is wrong with it or merges its points; both read a body they
both accept to the same records (tests/unit/test_influx_lines.py checks they
agree).
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as csv

from storecast.catalog import EQUIPMENT_TYPES, TIMESTAMP_LIMIT_MS, UINT32_MAX, Kind, RecordType
from storecast.v1 import records_pb2

# A tag other than `id`; escapes are not in a uniform body.
_OTHER_TAG = r",[^ ,=#]+=[^ ,]+"
_NAME = re.compile(r"[A-Za-z0-9_.\-]+")
_FIRST_LINE = re.compile(rf"([^ ,#][^ ,]*)((?:{_OTHER_TAG})*) ([^ ]+) (-?[0-9]+)")
_UNSIGNED = "^[0-9]+$"
_SIGNED = "^-?[0-9]+$"


@dataclass(frozen=True, slots=True)
class _Shape:
    """The first line's: its type, tag keys and fields (in line order), and how many spaces each comma-cut column holds."""

    equipment: RecordType
    measurement: str
    tags: list[str]
    fields: list[str]
    spaces: list[int]


def uniform_batch(body: bytes, multiplier: int, divisor: int) -> tuple[RecordType, records_pb2.RecordBatch] | None:
    """The body's records as one batch, or None when the body is not uniform (the general reader's then)."""
    if any(mark in body for mark in (b"\\", b'"', b"\r", b"\t")):
        return None
    if body[:1] in (b"", b"\n", b"#") or b"\n\n" in body or b"\n#" in body:
        return None  # blank lines and comments: the general reader skips them
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
    return _Shape(equipment, measurement, tag_names, fields, [column.count(" ") for column in first.split(",")])


def _read(body: bytes, shape: _Shape, multiplier: int, divisor: int) -> tuple[RecordType, records_pb2.RecordBatch] | None:
    items = _items(body, shape)
    if items is None:
        return None
    measurement, tags, fields, stamp_texts = items[0], items[1 : 1 + len(shape.tags)], items[1 + len(shape.tags) : -1], items[-1]
    if not pc.all(pc.equal(measurement, pa.scalar(shape.measurement))).as_py():
        return None
    id_texts = None
    for name, tag in zip(shape.tags, tags):
        values = _values_of(tag, name)
        if values is None:
            return None
        if name == "id":
            id_texts = values
        elif not pc.all(pc.not_equal(values, pa.scalar(""))).as_py():
            return None
    if id_texts is None or not _all_match(id_texts, _UNSIGNED) or not _all_match(stamp_texts, _SIGNED):
        return None
    ids = _integers(id_texts)
    stamps = _integers(stamp_texts)
    if (ids > UINT32_MAX).any():
        return None
    # Timestamps in range before scaling (no overflow), then floored to the millisecond as the general reader does.
    highest = (TIMESTAMP_LIMIT_MS * divisor - 1) // multiplier
    if (stamps < 0).any() or (stamps > highest).any():
        return None
    millis = stamps * multiplier // divisor
    if _repeats_a_key(ids, millis):
        return None  # points to merge: the general reader merges them field by field
    given: dict[str, np.ndarray] = {}
    for name, field in zip(shape.fields, fields):
        values = _values_of(field, name)
        if values is None:
            return None
        # Arrow reads what float() reads of a plain decimal number; what it refuses goes to the general reader.
        floats = np.asarray(pc.cast(values, pa.float64()).to_numpy(zero_copy_only=False), dtype=np.float64)
        if not np.isfinite(floats).all():
            return None
        given[name] = floats
    batch = records_pb2.RecordBatch(ids=ids.tolist(), timestamps=millis.tolist())
    for name in [attribute.name for attribute in shape.equipment.attributes if attribute.name in given]:  # catalog order
        batch.columns.add(name=name).doubles.extend(given[name].tolist())
    return shape.equipment, batch


def _items(body: bytes, shape: _Shape) -> list[pa.Array[Any]] | None:
    """Each line's measurement, tags, fields and timestamp, a column each, as text; None when a line is of another shape."""
    names = [str(index) for index in range(len(shape.spaces))]
    table = csv.read_csv(
        io.BytesIO(body),
        read_options=csv.ReadOptions(column_names=names, use_threads=False),
        parse_options=csv.ParseOptions(delimiter=",", quote_char=False, escape_char=False, ignore_empty_lines=False),
        convert_options=csv.ConvertOptions(
            column_types=dict.fromkeys(names, pa.string()), null_values=[], strings_can_be_null=False
        ),
    )
    items: list[pa.Array[Any]] = []
    for column, spaces in zip(table.columns, shape.spaces):
        text = column.combine_chunks()
        if not spaces:
            items.append(text)
            continue
        parts = pc.split_pattern(text, " ")
        if not pc.all(pc.equal(pc.list_value_length(parts), pa.scalar(spaces + 1))).as_py():
            return None
        items += [pc.list_element(parts, index) for index in range(spaces + 1)]
    return items


def _values_of(items: pa.Array[Any], key: str) -> pa.Array[Any] | None:
    """The values of `key=value` items; None unless every item has that key."""
    prefix = f"{key}="
    if not pc.all(pc.starts_with(items, prefix)).as_py():
        return None
    return pc.utf8_slice_codeunits(items, len(prefix))


def _all_match(texts: pa.Array[Any], pattern: str) -> bool:
    return bool(pc.all(pc.match_substring_regex(texts, pattern)).as_py())


def _integers(texts: pa.Array[Any]) -> np.ndarray:
    """Decimal integers as int64; ArrowInvalid past its range."""
    return np.asarray(pc.cast(texts, pa.int64()).to_numpy(zero_copy_only=False), dtype=np.int64)


def _repeats_a_key(ids: np.ndarray, millis: np.ndarray) -> bool:
    order = np.lexsort((millis, ids))
    ids, millis = ids[order], millis[order]
    return bool(((ids[1:] == ids[:-1]) & (millis[1:] == millis[:-1])).any())
