"""Line protocol as InfluxDB reads it (gateway/influx/lines.py), and points as records (mapping.py)."""

from __future__ import annotations

from unittest import mock

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.influx.lines import LineError, Point, points
from gateway.influx.mapping import PRECISIONS, Write, to_batches
from gateway.influx.uniform import uniform_batch
from storecast.catalog import EQUIPMENT_TYPES


def only(text: str) -> Point:
    (point,) = points(text)
    return point


def test_plain_line() -> None:
    assert only("meter,id=3 p=1.5,q=-2i,f=7u,g=t,h=FALSE 1535104800000000000") == Point(
        1, "meter", {"id": "3"}, {"p": 1.5, "q": -2, "f": 7, "g": True, "h": False}, 1535104800000000000
    )


def test_escapes_per_the_spec() -> None:
    point = only(r'm\,x\ y\=z,t\ k=a\,b\=c\ d f\=k="q \"u\" \\ ,= x",g=1 -5')
    assert point.measurement == r"m,x y\=z"  # a measurement escapes commas and spaces only
    assert point.tags == {"t k": "a,b=c d"}
    assert point.fields == {"f=k": 'q "u" \\ ,= x', "g": 1.0}
    assert point.timestamp == -5


def test_blank_lines_comments_and_line_numbers() -> None:
    found = list(points("# c\n\n  m,id=1 v=1\r\nm,id=2 v=2\n"))
    assert [(p.number, p.tags["id"]) for p in found] == [(3, "1"), (4, "2")]
    with pytest.raises(LineError, match="^line 2: "):
        list(points("m,id=1 v=1\nm,id=1 v=x"))


@pytest.mark.parametrize(
    "line",
    [
        "m v=nan",
        "m v=inf",
        "m v=1_0",
        "m v=١",
        "m v=1e999",
        "m v=9223372036854775808i",
        "m v=-1u",
        "m v=",
        "m",
        "m  v=1",
        "m v=1 1 2",
        "m v=1 1.5",
        'm v="open',
        "m,t v=1",
        ",id=1 v=1",
        "m =1",
    ],
)
def test_not_line_protocol(line: str) -> None:
    with pytest.raises(LineError, match="^line 1: "):
        list(points(line))


def test_points_merge_into_one_record_per_key_and_become_typed_columns() -> None:
    body = "meter,id=1 p=1 5\nmeter,id=1 q=2 5\nmeter,id=2 p=3 5\nstatus,id=1 value=2 5"
    write = to_batches(body, "ms", 0)
    assert write.records == 3 and write.type_names == ["meter", "status"]
    meter = write.batches[0][1]
    assert list(meter.ids) == [1, 2] and list(meter.timestamps) == [5, 5]
    p, q = meter.columns
    assert (p.name, list(p.doubles), p.null_map) == ("p", [1.0, 3.0], b"")
    assert (q.name, list(q.doubles), q.null_map) == ("q", [2.0, 0.0], b"\x00\x01")
    assert list(write.batches[1][1].columns[0].uints) == [2]


@pytest.mark.parametrize(
    ("precision", "stamp", "ms"), [("ns", 1_999_999, 1), ("us", 1999, 1), ("s", 2, 2000), ("h", 1, 3_600_000)]
)
def test_precision_floors_to_the_millisecond(precision: str, stamp: int, ms: int) -> None:
    assert list(to_batches(f"metric,id=1 value=1 {stamp}", precision, 0).batches[0][1].timestamps) == [ms]


# The uniform reader (gateway/influx/uniform.py) against the general one, on bodies near its edges.
_METER_3P = [attribute.name for attribute in EQUIPMENT_TYPES["meter-3p"].attributes]
_PRECISIONS = sorted(PRECISIONS)


def _general(text: str, precision: str) -> Write | str:
    """What the general reader makes of a body (its records, or its error), the uniform one bypassed."""
    with mock.patch("gateway.influx.uniform.uniform_batch", lambda *_: None):
        try:
            return to_batches(text, precision, received_ms=0)
        except LineError as error:
            return str(error)


_ODD_VALUES = ["1.", "-0.0", "007.50", "1e3", "2i", "3u", "t", "nan", "1" * 320, ""]
_ODD_STAMPS = ["-1", "9223372036854775807", "9223372036854775808", "7258118400000", "", "1.5"]
_ODD_LINES = ["# note", "", "  meter-3p,id=1 l1_p=1 5", "meter-3p,id=1 l1_p=1,l1_p=2 5", "meter-1p,id=1 l1_p=1 5"]


@st.composite
def _near_uniform_bodies(draw: st.DrawFn) -> str:
    """Lines of one shape, the usual body, and in half of them one thing changed: an odd value or
    timestamp, another field order, an id out of range, a key written twice, an odd line."""
    fields = draw(st.lists(st.sampled_from(_METER_3P), min_size=1, max_size=5, unique=True))
    extra_tag = draw(st.sampled_from(["", ",host=a1", ",zone=x=y"]))
    tags_first = draw(st.booleans())
    rows = draw(
        st.lists(
            st.tuples(
                st.integers(0, 50),
                st.lists(st.floats(-1e6, 1e6).map(lambda v: round(v, 4)), min_size=len(fields), max_size=len(fields)),
            ),
            min_size=1,
            max_size=12,
        )
    )
    stamp0 = draw(st.integers(0, 7_258_118_300_000))
    keys = [f"id={key}" for key, _ in rows]
    values = [[f"{name}={value!r}" for name, value in zip(fields, row)] for _, row in rows]
    stamps = [str(stamp0 + i) for i in range(len(rows))]
    change = draw(st.integers(0, 11))
    where = draw(st.integers(0, len(rows) - 1))
    if change == 0:
        values[where][draw(st.integers(0, len(fields) - 1))] = f"{fields[0]}={draw(st.sampled_from(_ODD_VALUES))}"
    elif change == 1:
        stamps[where] = draw(st.sampled_from(_ODD_STAMPS))
    elif change == 2:
        values[where].reverse()
    elif change == 3:
        keys[where] = f"id={draw(st.sampled_from(['4294967295', '4294967296', '00012', '-1', 'x']))}"
    elif change == 4:
        keys[where], stamps[where] = keys[0], stamps[0]  # the first line's key again
    text = [
        f"meter-3p{',' + key + extra_tag if tags_first else extra_tag + ',' + key} {','.join(line)}"
        + (f" {stamp}" if stamp else "")
        for key, line, stamp in zip(keys, values, stamps)
    ]
    if change == 5:
        text.insert(where, draw(st.sampled_from(_ODD_LINES)))
    return "\n".join(text) + draw(st.sampled_from(["", "\n"]))


@settings(max_examples=200, deadline=None)
@given(body=_near_uniform_bodies(), precision=st.sampled_from(_PRECISIONS))
def test_the_uniform_reader_agrees_with_the_general_one(body: str, precision: str) -> None:
    multiplier, divisor = PRECISIONS[precision]
    uniform = uniform_batch(body.encode(), multiplier, divisor)
    general = _general(body, precision)
    if uniform is None:
        return  # the general reader's body: accepted or refused, by it alone
    assert not isinstance(general, str), f"the uniform reader took a body the general one refuses: {general}"
    assert general.batches == [uniform] and general.records == len(uniform[1].timestamps), (body, general.batches, uniform)


def test_the_uniform_reader_takes_the_usual_body() -> None:
    body = "".join(f"meter-3p,id={i % 3} l1_p={i}.5,f=50.01 {1_700_000_000_000 + i}\n" for i in range(100))
    found = uniform_batch(body.encode(), 1, 1)
    assert found is not None and found[0].name == "meter-3p" and len(found[1].timestamps) == 100
    assert to_batches(body, "ms", received_ms=0).batches == [found]
