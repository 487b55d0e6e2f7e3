"""InfluxDB line protocol, as the 1.x and 2.x write APIs read it:

    measurement[,tag=value...] field=value[,field=value...] [timestamp]

One point per line; blank lines and lines starting with `#` are skipped. A
backslash escapes a comma or a space in a measurement, and a comma, an equals
sign or a space in a tag key, tag value or field key; a string field value is
double-quoted, with `\\"` and `\\\\` its escapes. A field value is a float
(`1`, `-1.5e3`), a signed integer (`1i`), an unsigned integer (`1u`), a
boolean (`t`, `true`, `F`, ...) or a string. The timestamp is a signed integer
in the request's precision.

Most lines hold neither a backslash nor a double quote; they are cut with
str.split, the rest scanned a character at a time. Measured against the C
parser of PyPI's line-protocol-parser 2.0.1 in docs/api/extensions.md.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass

FieldValue = float | int | bool | str

INT64_MIN, INT64_MAX, UINT64_MAX = -(2**63), 2**63 - 1, 2**64 - 1
_DIGITS = frozenset("0123456789")
_NUMBER_START = frozenset("+-.0123456789")
_NUMBER_END = frozenset(".0123456789")
# The usual field value, which float() reads as line protocol does, and finite: others go to field_value.
_PLAIN_FLOAT = re.compile(r"-?[0-9]{1,300}(?:\.[0-9]*)?").fullmatch
_BOOLEANS = {"t": True, "T": True, "true": True, "True": True, "TRUE": True}
_BOOLEANS |= {"f": False, "F": False, "false": False, "False": False, "FALSE": False}


class LineError(ValueError):
    """A line that is not line protocol; its message says where and why."""


@dataclass(frozen=True, slots=True)
class Point:
    number: int  # the line's number in the body, from 1
    measurement: str
    tags: dict[str, str]
    fields: dict[str, FieldValue]
    timestamp: int | None  # in the request's precision


def points(text: str) -> Iterator[Point]:
    """The body's points in order; LineError at the first line that is not line protocol."""
    for index, raw in enumerate(text.split("\n")):
        line = raw.strip(" \t\r")
        if not line or line[0] == "#":
            continue
        number = index + 1
        try:
            if "\\" in line or '"' in line:
                yield _scanned(number, line)
            else:
                yield _split(number, line)
        except LineError as error:
            raise LineError(f"line {number}: {error}") from None


def _split(number: int, line: str) -> Point:
    parts = line.split(" ")
    if "" in parts or len(parts) > 3:
        raise LineError(_shape(parts))
    if len(parts) == 2:
        key, field_set = parts
        stamp = None
    elif len(parts) == 3:
        key, field_set, stamp_text = parts
        stamp = timestamp(stamp_text)
    else:
        raise LineError(_shape(parts))
    measurement, *tag_pairs = key.split(",")
    tags = {}
    for pair in tag_pairs:
        name, equals, value = pair.partition("=")
        if not equals or not name or not value:
            raise LineError(f"bad tag {pair!r}: expected key=value")
        tags[name] = value
    fields: dict[str, FieldValue] = {}
    for pair in field_set.split(","):
        name, equals, value = pair.partition("=")
        if not equals or not name:
            raise LineError(f"bad field {pair!r}: expected key=value")
        fields[name] = float(value) if _PLAIN_FLOAT(value) else field_value(name, value)
    if not measurement:
        raise LineError("missing measurement")
    return Point(number, measurement, tags, fields, stamp)


def _shape(parts: list[str]) -> str:
    if len(parts) < 2:
        return "missing fields"
    if "" in parts:
        return "more than one space between sections"
    return "unexpected text after the timestamp"


def _scanned(number: int, line: str) -> Point:
    """A line with escapes or quoted strings, read by _Scanner."""
    scan = _Scanner(line)
    measurement = scan.token(", ", escapable=", ")
    if not measurement:
        raise LineError("missing measurement")
    tags = {}
    while scan.take(","):
        name = scan.token("=")
        scan.expect("=", f"tag {name!r}")
        value = scan.token(", ")
        if not name or not value:
            raise LineError(f"bad tag {name!r}: expected key=value")
        tags[name] = value
    scan.expect(" ", "the field set")
    fields: dict[str, FieldValue] = {}
    while True:
        name = scan.token("=")
        scan.expect("=", f"field {name!r}")
        if not name:
            raise LineError("empty field key")
        fields[name] = scan.string(name) if scan.peek() == '"' else field_value(name, scan.bare())
        if not scan.take(","):
            break
    stamp = None
    if scan.take(" "):
        stamp = timestamp(scan.rest())
    elif not scan.done():
        raise LineError(f"unexpected {scan.peek()!r} after the fields")
    return Point(number, measurement, tags, fields, stamp)


class _Scanner:
    def __init__(self, line: str) -> None:
        self._line = line
        self._at = 0

    def peek(self) -> str:
        return self._line[self._at] if self._at < len(self._line) else ""

    def done(self) -> bool:
        return self._at >= len(self._line)

    def take(self, char: str) -> bool:
        if self.peek() == char:
            self._at += 1
            return True
        return False

    def expect(self, char: str, what: str) -> None:
        if not self.take(char):
            found = repr(self.peek()) if self.peek() else "the end of the line"
            raise LineError(f"expected {char!r} after {what}, found {found}")

    def token(self, stops: str, escapable: str = ", =") -> str:
        """Characters up to an unescaped stop (or the end); a backslash before an escapable character is dropped."""
        line, out = self._line, list[str]()
        while self._at < len(line):
            char = line[self._at]
            if char in stops:
                break
            if char == "\\" and self._at + 1 < len(line) and line[self._at + 1] in escapable:
                char = line[self._at + 1]
                self._at += 1
            out.append(char)
            self._at += 1
        return "".join(out)

    def bare(self) -> str:
        """An unquoted field value: up to the next comma or space."""
        start = self._at
        while self._at < len(self._line) and self._line[self._at] not in ", ":
            self._at += 1
        return self._line[start : self._at]

    def string(self, name: str) -> str:
        """A double-quoted field value, `\\"` and `\\\\` unescaped."""
        line, out = self._line, list[str]()
        self._at += 1
        while self._at < len(line):
            char = line[self._at]
            if char == '"':
                self._at += 1
                return "".join(out)
            if char == "\\" and self._at + 1 < len(line) and line[self._at + 1] in '"\\':
                char = line[self._at + 1]
                self._at += 1
            out.append(char)
            self._at += 1
        raise LineError(f"field {name!r}: unterminated string")

    def rest(self) -> str:
        rest = self._line[self._at :]
        self._at = len(self._line)
        return rest


def field_value(name: str, text: str) -> FieldValue:
    if not text:
        raise LineError(f"field {name!r} has no value")
    last = text[-1]
    if last in "iu" and len(text) > 1 and _is_integer(text[:-1]):
        value = int(text[:-1])
        low, high = (INT64_MIN, INT64_MAX) if last == "i" else (0, UINT64_MAX)
        if not low <= value <= high:
            kind = "a 64-bit integer" if last == "i" else "an unsigned 64-bit integer"
            raise LineError(f"field {name!r}: {text} is out of range for {kind}")
        return value
    # float() also reads "nan", "1_0", " 1", "١": a line protocol float starts and ends as one of these.
    if text[0] in _NUMBER_START and last in _NUMBER_END and text.isascii() and "_" not in text:
        try:
            number = float(text)
        except ValueError:
            pass
        else:
            if not math.isfinite(number):
                raise LineError(f"field {name!r}: {text} is beyond a 64-bit float's range")
            return number
    boolean = _BOOLEANS.get(text)
    if boolean is not None:
        return boolean
    raise LineError(f"field {name!r}: bad value {text!r}")


def timestamp(text: str) -> int:
    if not _is_integer(text):
        raise LineError(f"bad timestamp {text!r}: expected an integer")
    value = int(text)
    if not INT64_MIN <= value <= INT64_MAX:
        raise LineError(f"timestamp {text} is out of range for a 64-bit integer")
    return value


def _is_integer(text: str) -> bool:
    digits = text[1:] if text[:1] == "-" else text
    return bool(digits) and digits.isascii() and digits.isdigit()
