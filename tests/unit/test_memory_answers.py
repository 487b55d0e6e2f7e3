"""Answers from memory are the engine's bytes: its float text, checked against chDB itself."""

from __future__ import annotations

import struct

import chdb
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from services.lib.reads.render import engine_float
from services.lib.reads.window import Window
from services.lib.recent.answer import MEMORY_RENDER_MAX_VALUES, from_memory, render
from services.lib.recent.hot import SeriesRecords
from storecast.aggregations import AGGREGATIONS
from storecast.catalog import EQUIPMENT_TYPES

_EDGES = [0.1, 1e-7, 1.5e-5, 1e-6, 9.999999e-7, 1e16, 1e20, 1e21, 1.5e22, 123456.789, -0.0, 0.0, 5e-324, 1.7976931348623157e308]


def _engine_texts(values: list[float]) -> list[str]:
    bits = ",".join(f"reinterpretAsFloat64(toUInt64({struct.unpack('<Q', struct.pack('<d', v))[0]}))" for v in values)
    sql = f"SELECT toString(x) FROM (SELECT arrayJoin([{bits}]) AS x) SETTINGS max_query_size=10000000"
    out: bytes = chdb.query(sql, "TSVRaw").bytes()  # type: ignore[no-untyped-call]
    return out.decode().split("\n")[: len(values)]


@settings(max_examples=20, deadline=None)
@given(st.lists(st.floats(allow_nan=False, allow_infinity=False), min_size=1, max_size=200))
def test_float_text_is_the_engines(values: list[float]) -> None:
    values = _EDGES + values
    assert [engine_float(v) for v in values] == _engine_texts(values)


def test_a_rendered_record_has_the_engines_shape() -> None:
    battery = EQUIPMENT_TYPES["battery"]
    columns = [np.array([np.nan if a.name == "e" else (-0.0 if a.name == "p" else 2.0)]) for a in battery.attributes]
    rendered, count, next_from = render(battery, 7, SeriesRecords(np.array([1000]), columns), None, None, 10)
    members = ",".join(
        f'"{a.name}":'
        + ("null" if a.name == "e" else "-0.0" if a.name == "p" else "2" if a.kind.name == "UNSIGNED_INT" else "2.0")
        for a in battery.attributes
    )
    assert rendered == f'[{{"timestamp":1000,"id":7,{members}}}]'.encode()
    assert (count, next_from) == (1, None)


def test_aggregation_buckets_ignore_nulls_and_cut_at_the_limit() -> None:
    meter = EQUIPMENT_TYPES["meter"]
    stamps = np.array([0, 500, 1000, 1500, 2500])
    p = np.array([1.0, 3.0, np.nan, np.nan, 5.0])
    columns = [p] + [np.full(5, np.nan) for _ in meter.attributes[1:]]
    rendered, count, next_from = render(meter, 1, SeriesRecords(stamps, columns), AGGREGATIONS["avg"], 1000, 2)
    assert rendered.startswith(b'[{"timestamp":0,"id":1,"p":2.0') and b'{"timestamp":1000,"id":1,"p":null' in rendered
    assert (count, next_from) == (2, 2000)


def test_every_aggregation_memory_answers_over_a_bucket_of_nulls_as_the_engine_would() -> None:
    meter = EQUIPMENT_TYPES["meter"]
    columns = [np.array([np.nan, np.nan])] + [np.full(2, np.nan) for _ in meter.attributes[1:]]
    for name, aggregation in AGGREGATIONS.items():
        rendered, _, _ = render(meter, 1, SeriesRecords(np.array([0, 1]), columns), aggregation, 1000, 10)
        assert rendered.startswith(b'[{"timestamp":0,"id":1,"p":' + (b"0" if name == "count" else b"null")), name


class _Held:
    """RecentWrites holding one series' records, whatever the range asked."""

    def __init__(self, records: SeriesRecords) -> None:
        self.records = records

    def read(self, equipment: str, site_id: int, record_id: int, start: int | None, end: int | None) -> SeriesRecords:
        return self.records

    def sync(self, equipment: str, site_id: int, record_id: int, start: int | None, end: int | None) -> None: ...

    def sync_all(self) -> None: ...


def test_a_raw_read_too_long_to_render_here_goes_to_the_store_and_an_aggregated_one_does_not() -> None:
    meter = EQUIPMENT_TYPES["meter-3p"]
    rows = MEMORY_RENDER_MAX_VALUES // len(meter.attributes) + 1
    held = _Held(SeriesRecords(np.arange(rows, dtype=np.int64), [np.ones(rows)] * len(meter.attributes)))
    raw = Window(0, rows, None, None)
    assert from_memory(held, meter, 1, 1, raw, horizon=0, limit=rows) is None
    # The same records cut at a limit that renders quickly, or averaged per bucket, are answered here.
    assert from_memory(held, meter, 1, 1, raw, horizon=0, limit=rows - 1) is not None
    average = Window(0, rows, AGGREGATIONS["avg"], 1_000)
    answer = from_memory(held, meter, 1, 1, average, horizon=0, limit=rows)
    assert answer is not None and answer.count == -(-rows // 1_000)
