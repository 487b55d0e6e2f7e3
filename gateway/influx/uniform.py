"""The usual line-protocol body, read a column at a time.

What Telegraf, an EMS or the bench sends is one measurement, the same tags and
the same float fields in the same order on every line, and a timestamp. Such a
body is matched by one regular expression built from its first line, over the
whole text in C (`re.findall`), and its numbers converted by numpy: no object
per point or per field. Any body that is not exactly that (another measurement
or field set, escapes, quoted strings, integers, booleans, a missing
timestamp, a repeated (id, timestamp), a value out of range) is left to the
general reader (lines.py and mapping.py), which says what is wrong with it or
merges its points; both read a body they both accept to the same records
(tests/unit/test_influx_lines.py checks they agree).
"""

from __future__ import annotations

import re

import numpy as np

from storecast.catalog import EQUIPMENT_TYPES, TIMESTAMP_LIMIT_MS, UINT32_MAX, Kind, RecordType
from storecast.v1 import records_pb2

# The float field value the general reader takes without more checks (lines.py's _PLAIN_FLOAT).
_FLOAT = r"-?[0-9]{1,300}(?:\.[0-9]*)?"
# A tag other than `id`; escapes are not in a uniform body.
_OTHER_TAG = r",[^ ,=#]+=[^ ,]+"
_NAME = re.compile(r"[A-Za-z0-9_.\-]+")
_FIRST_LINE = re.compile(rf"([^ ,#][^ ,]*)((?:{_OTHER_TAG})*) ([^ ]+) (-?[0-9]+)")


def uniform_batch(text: str, multiplier: int, divisor: int) -> tuple[RecordType, records_pb2.RecordBatch] | None:
    """The body's records as one batch, or None when the body is not uniform (the general reader's then)."""
    if "\\" in text or '"' in text or "\r" in text or "\t" in text:
        return None
    shape = _shape(text)
    if shape is None:
        return None
    equipment, pattern, fields = shape
    if text[:1] in ("", "\n", "#") or "\n\n" in text or "\n#" in text:
        return None  # blank lines and comments: the general reader skips them
    content = text.count("\n") + (not text.endswith("\n"))
    rows = pattern.findall(text)  # (id, field..., timestamp) per line, as text
    if len(rows) != content:
        return None
    columns = list(zip(*rows))
    count = len(rows)
    try:
        ids = np.fromiter(map(int, columns[0]), dtype=np.int64, count=count)
        stamps = np.fromiter(map(int, columns[-1]), dtype=np.int64, count=count)
    except OverflowError:
        return None  # a timestamp beyond a 64-bit integer
    if (ids > UINT32_MAX).any():
        return None
    # Timestamps in range before scaling (no overflow), then floored to the millisecond as the general reader does.
    highest = (TIMESTAMP_LIMIT_MS * divisor - 1) // multiplier
    if (stamps < 0).any() or (stamps > highest).any():
        return None
    millis = stamps * multiplier // divisor
    if len(set(zip(ids.tolist(), millis.tolist()))) != count:
        return None  # points to merge: the general reader merges them field by field
    batch = records_pb2.RecordBatch(ids=ids.tolist(), timestamps=millis.tolist())
    given = dict(zip(fields, columns[1:-1]))
    for name in [attribute.name for attribute in equipment.attributes if attribute.name in given]:  # catalog order
        values = np.fromiter(map(float, given[name]), dtype=np.float64, count=count)
        if not np.isfinite(values).all():
            return None
        batch.columns.add(name=name).doubles.extend(values.tolist())
    return equipment, batch


def _shape(text: str) -> tuple[RecordType, re.Pattern[str], list[str]] | None:
    """From the first line that is not blank or a comment: its type, the pattern every line must match, its fields."""
    first = next((line for line in text.split("\n", 64) if line and line[0] != "#"), None)
    if first is None:
        return None
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
    # The same tag keys in the same order, `id` captured; the same fields, each a plain float.
    tag_pattern = "".join(r",id=([0-9]+)" if name == "id" else rf",{re.escape(name)}=[^ ,]+" for name in tag_names)
    field_pattern = ",".join(rf"{re.escape(name)}=({_FLOAT})" for name in fields)
    pattern = re.compile(rf"^{re.escape(measurement)}{tag_pattern} {field_pattern} (-?[0-9]+)$", re.MULTILINE)
    return equipment, pattern, fields
