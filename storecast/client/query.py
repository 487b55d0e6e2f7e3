"""The options of a read (CONTRACT §6) and their two spellings: v1 query parameters and gRPC request fields."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np
import pandas as pd

from storecast.catalog import Kind
from storecast.client.series import READ_END_MS, Category, Series

# An instant: epoch milliseconds, or anything pandas reads as a time (naive means UTC).
Instant = int | dt.datetime | pd.Timestamp | np.datetime64 | str
# A bucket width: `15m`, `30s`, `1h`, `1d`, milliseconds (whole seconds), or a timedelta.
Period = str | int | dt.timedelta | pd.Timedelta
Aggregation = Literal["min", "max", "avg"]

_PERIOD = re.compile(r"([0-9]{1,9})([smhd])")
_UNIT_MS = {"d": 86_400_000, "h": 3_600_000, "m": 60_000, "s": 1_000}


def to_ms(instant: Instant) -> int:
    """Epoch milliseconds of an instant; an int is taken as milliseconds already."""
    if isinstance(instant, bool):
        raise TypeError("a timestamp cannot be a bool")
    if isinstance(instant, int | np.integer):
        return int(instant)
    stamp = pd.Timestamp(instant)
    if stamp.tzinfo is None:
        stamp = stamp.tz_localize("UTC")
    return int(stamp.value // 1_000_000)


def period_ms(period: Period) -> int:
    if isinstance(period, str):
        match = _PERIOD.fullmatch(period)
        if match is None:
            raise ValueError(f"period must be a positive integer followed by s, m, h or d, got {period!r}")
        return int(match[1]) * _UNIT_MS[match[2]]
    if isinstance(period, dt.timedelta):
        return int(pd.Timedelta(period).value // 1_000_000)
    return int(period)


def period_text(milliseconds: int) -> str:
    """The v1 spelling of a period in milliseconds (whole seconds): the largest unit that divides it."""
    if milliseconds <= 0 or milliseconds % 1000:
        raise ValueError(f"a period is a positive whole number of seconds, got {milliseconds} ms")
    unit = next(unit for unit, size in _UNIT_MS.items() if milliseconds % size == 0)
    return f"{milliseconds // _UNIT_MS[unit]}{unit}"


@dataclass(frozen=True, slots=True)
class Query:
    """[start, end[ on period timestamps; [generated_after, generated_before[ on creation timestamps
    (vectors), with every vector in it if generate_all; aggregation per bucket of `period_ms`."""

    start: int | None = None
    end: int | None = None
    generated_after: int | None = None
    generated_before: int | None = None
    generate_all: bool | None = None
    agg: Aggregation | None = None
    period_ms: int | None = None

    @classmethod
    def of(
        cls,
        *,
        start: Instant | None = None,
        end: Instant | None = None,
        generated_after: Instant | None = None,
        generated_before: Instant | None = None,
        generate_all: bool | None = None,
        as_of: Instant | None = None,
        agg: Aggregation | None = None,
        period: Period | None = None,
    ) -> Query:
        """`as_of`: the latest vector created at or before it (generated in [0, as_of]), as tshistory's revision_date."""
        if as_of is not None:
            if generated_after is not None or generated_before is not None:
                raise ValueError("as_of replaces generated_after and generated_before")
            generated_after, generated_before = 0, to_ms(as_of) + 1
        # gRPC requests carry intervals whole; both transports refuse half of one alike.
        if (start is None) != (end is None):
            raise ValueError("start and end come together or not at all")
        if (generated_after is None) != (generated_before is None):
            raise ValueError("generated_after and generated_before come together or not at all")
        return cls(
            None if start is None else to_ms(start),
            None if end is None else to_ms(end),
            None if generated_after is None else to_ms(generated_after),
            None if generated_before is None else to_ms(generated_before),
            generate_all,
            agg,
            None if period is None else period_ms(period),
        )

    def resumed(self, next_from: int) -> Query:
        """The same read from `next_from` on (a read with no range resumes up to READ_END_MS)."""
        return replace(self, start=next_from, end=READ_END_MS if self.end is None else self.end)

    def params(self) -> dict[str, str]:
        """v1 query parameters."""
        params: dict[str, str] = {}
        for name, value in (
            ("from", self.start),
            ("to", self.end),
            ("generated-after", self.generated_after),
            ("generated-before", self.generated_before),
        ):
            if value is not None:
                params[name] = str(value)
        if self.generate_all is not None:
            params["generate-all"] = "true" if self.generate_all else "false"
        if self.agg is not None:
            params["agg"] = self.agg
        if self.period_ms is not None:
            params["period"] = period_text(self.period_ms)
        return params


def float_attributes(series: Series, query: Query) -> frozenset[str]:
    """Unsigned attributes that an average makes floats (CONTRACT §7): not a forecast period's quality (its
    minimum), nor a commitment's quality (the vector's, returned as stored)."""
    if query.agg != "avg":
        return frozenset()
    names = {a.name for a in series.attributes if a.kind is Kind.UNSIGNED_INT}
    if series.category is Category.FORECAST:
        names.discard("quality")
    return frozenset(names)
