"""The rules a PUT's values keep, declared once for v1 JSON bodies and typed RecordBatches.

A rule is a bound (a msgspec Meta) and the words naming a value beyond it. A
kind of value (a timestamp, an id, an attribute of each kind, a vector's
periods) is a decoded type and its rules; `KINDS` is the table of them all.
The JSON decoders' types carry the bounds, so msgspec checks them in C while
it reads a body and stops at the first value refused in the body's order;
payload.describe finds the rule by the bound msgspec states (`spelled`).
Typed input checks the same bounds over numpy columns (`Values.check`), but
where the protobuf field's type already holds them (ids and UNSIGNED_INT
attributes are uint32). Either way the refusal is the rule's own words: the
two paths cannot word a rule apart, and a new rule is one more entry in a
kind's tuple.

A rule over several values (a vector has one period per timestamp) is a check
over columns that both paths run: `period_order`.
"""

from __future__ import annotations

import operator
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Annotated, Any

import msgspec
import numpy as np

from services.lib.records.columns import Entries
from storecast.catalog import COMMITMENT, EQUIPMENT_TYPES, FORECAST_TYPES, TARIFF, TIMESTAMP_LIMIT_MS, UINT32_MAX, Attribute, Kind
from storecast.status import ApiFailure, ApiStatus

# Where a row sits in the equivalent JSON body, e.g. "values[3]".
RowPath = Callable[[int], str]
# How msgspec states a bound it refuses a value for: (JSON type, operator, bound), e.g. ("int", "<=", 9),
# ("str", "of length <=", 64).
Spelling = tuple[str, str, float]

# The bounds of a Meta on a value, then those on its length, with the comparison a kept value passes.
_VALUE_BOUNDS = (("ge", ">=", operator.ge), ("gt", ">", operator.gt), ("le", "<=", operator.le), ("lt", "<", operator.lt))
_LENGTH_BOUNDS = (("min_length", ">=", operator.ge), ("max_length", "<=", operator.le))
# msgspec states an integer's exclusive bound as the inclusive one (`lt=10` as `<= 9`), as the float
# branch of an integer field does (see payload._integral_float).
_INCLUSIVE = {">": (">=", 1), "<": ("<=", -1)}


def content_error(message: str) -> ApiFailure:
    return ApiFailure(ApiStatus.PAYLOAD_CONTENT_ERROR, message)


def nothing_to_store() -> ApiFailure:
    return ApiFailure(ApiStatus.PAYLOAD_EMPTY_ERROR, "`values` is missing or empty")


@dataclass(frozen=True, slots=True)
class Rule:
    """A bound on values (or on their lengths) and the words for a value beyond it."""

    meta: msgspec.Meta
    words: str

    def at(self, where: str) -> str:
        """The refusal of the value at a place of the body: "values[3].p: expected a finite number"."""
        return f"{where}: {self.words}"

    def broken(self, measures: np.ndarray) -> np.ndarray:
        """Where a column of values, or of lengths for a bound on length, breaks the rule; NaN breaks every bound."""
        kept = np.ones(len(measures), dtype=bool)
        for name, _, keeps in (*_VALUE_BOUNDS, *_LENGTH_BOUNDS):
            bound = getattr(self.meta, name)
            if bound is not None:
                kept &= keeps(measures, bound)
        return ~kept

    def spellings(self, json_type: str) -> Iterator[Spelling]:
        """How msgspec states this rule's bounds when it refuses a value of the JSON type."""
        for name, op, _ in _VALUE_BOUNDS:
            bound = getattr(self.meta, name)
            if bound is not None:
                yield json_type, op, bound
                if json_type == "int" and op in _INCLUSIVE:
                    inclusive, step = _INCLUSIVE[op]
                    yield json_type, inclusive, bound + step
        for name, op, _ in _LENGTH_BOUNDS:
            bound = getattr(self.meta, name)
            if bound is not None:
                yield json_type, f"of length {op}", bound


# The JSON types as msgspec names them.
_JSON_TYPES: dict[type, str] = {int: "int", float: "float", str: "str", list: "array"}


@dataclass(frozen=True, slots=True)
class Values:
    """A kind of value: its decoded type and the rules it keeps, in the order typed input checks them."""

    base: type
    rules: tuple[Rule, ...] = ()

    @property
    def json_type(self) -> str:
        return _JSON_TYPES[self.base]

    def annotated(self, decoded: Any = None) -> Any:
        """The decoded type (the base, or a parametrized one: list[Period]) bound by the rules, for msgspec to check."""
        decoded = self.base if decoded is None else decoded
        return Annotated[(decoded, *(rule.meta for rule in self.rules))] if self.rules else decoded

    def check(self, measures: np.ndarray, nulls: np.ndarray | None, path: RowPath, field: str) -> None:
        """Typed input: 1303 naming the first row (of those not null) that breaks a rule, rule by rule."""
        for rule in self.rules:
            broken = rule.broken(measures)
            if nulls is not None:
                broken &= ~nulls
            if broken.any():
                raise content_error(rule.at(f"{path(int(broken.argmax()))}.{field}"))


NON_NEGATIVE = Rule(msgspec.Meta(ge=0), "expected a non-negative integer")
BEFORE_2200 = Rule(msgspec.Meta(lt=TIMESTAMP_LIMIT_MS), f"expected a timestamp below {TIMESTAMP_LIMIT_MS} (2200-01-01T00:00:00Z)")
WITHIN_UINT32 = Rule(msgspec.Meta(le=UINT32_MAX), f"expected an integer <= {UINT32_MAX}")
# JSON has no NaN or Infinity; a number beyond a double's range is refused for it (msgspec's "Number out of range").
FINITE = Rule(msgspec.Meta(ge=-sys.float_info.max, le=sys.float_info.max), "expected a finite number")
NON_EMPTY = Rule(msgspec.Meta(min_length=1), "expected a non-empty array")


def at_most_characters(length: int) -> Rule:
    return Rule(msgspec.Meta(max_length=length), f"expected a string of at most {length} characters")


TIMESTAMP = Values(int, (NON_NEGATIVE, BEFORE_2200))
# Ids and UNSIGNED_INT attributes.
UINT32 = Values(int, (NON_NEGATIVE, WITHIN_UINT32))
FLOAT = Values(float, (FINITE,))
# A vector's or a tariff's periods.
PERIODS = Values(list, (NON_EMPTY,))


def attribute_values(attribute: Attribute) -> Values:
    """The values of an attribute of the catalog; a STRING one has its length limit (in characters)."""
    if attribute.kind is Kind.FLOAT:
        return FLOAT
    if attribute.kind is Kind.UNSIGNED_INT:
        return UINT32
    return Values(str, (at_most_characters(attribute.max_length),) if attribute.max_length else ())


_CATALOG = [*EQUIPMENT_TYPES.values(), *FORECAST_TYPES.values(), COMMITMENT, TARIFF]
# The table: every kind of value a PUT holds, hence every rule.
KINDS: tuple[Values, ...] = tuple(
    dict.fromkeys(
        [
            TIMESTAMP,
            UINT32,
            PERIODS,
            *(attribute_values(a) for t in _CATALOG for a in t.attributes + t.vector_attributes),
        ]
    )
)
_SPELLED: dict[Spelling, Rule] = {
    spelling: rule for kind in KINDS for rule in kind.rules for spelling in rule.spellings(kind.json_type)
}


def spelled(json_type: str, op: str, bound: float) -> Rule | None:
    """The rule msgspec refused a value for, from the bound it states: ("int", "<=", 4294967295) is WITHIN_UINT32."""
    return _SPELLED.get((json_type, op, bound))


# ---- types: the words of the JSON path's type errors, which typed input says alike --------

# A JSON type as msgspec names it, as the value found ("got a string").
TYPE_WORDS = {
    "str": "a string",
    "int": "an integer",
    "float": "a decimal number",
    "bool": "a boolean",
    "null": "null",
    "array": "an array",
    "object": "an object",
}
# The types msgspec expects, as the value expected ("expected a number or null").
EXPECTED_WORDS = {
    "int": "a non-negative integer",
    "float": "a number",
    "float | null": "a number or null",
    "int | null": "a non-negative integer or null",
    # An integer field of the decoders that take integral floats (see payload._integral_floats).
    "int | float": "a non-negative integer",
    "int | float | null": "a non-negative integer or null",
    "str": "a string",
    "str | null": "a string or null",
    "object": "an object",
    "array": "an array",
    "array | null": "an array",
}
UNKNOWN_ATTRIBUTE = "unknown attribute"


def mismatch(expected: str, got: str) -> str:
    """ "expected a number or null, got a string" from msgspec's names of the types."""
    return f"expected {EXPECTED_WORDS.get(expected, expected)}, got {TYPE_WORDS.get(got, got)}"


# ---- rules over several values ---------------------------------------------------------


def period_order(stamps: np.ndarray, layout: Entries) -> np.ndarray | None:
    """Row order putting each vector's periods ascending by timestamp (stable), None when they already are;
    two periods of a vector at one timestamp are 1303."""
    owners = np.repeat(np.arange(len(layout.ends)), layout.counts)
    if ((np.diff(stamps) > 0) | (np.diff(owners) > 0)).all():
        return None  # the usual body: each vector's periods in time order
    order: np.ndarray = np.lexsort((stamps, owners))
    sorted_stamps, sorted_owners = stamps[order], owners[order]
    tied = (sorted_stamps[1:] == sorted_stamps[:-1]) & (sorted_owners[1:] == sorted_owners[:-1])
    if tied.any():
        at = int(tied.argmax())
        earlier, later = int(order[at]), int(order[at + 1])
        raise content_error(
            f"{layout.path(later)}.timestamp: {int(stamps[later])} is already the timestamp"
            f" of {layout.path(earlier)}; a vector has one period per timestamp"
        )
    return order
