"""Line protocol as InfluxDB reads it (gateway/influx/lines.py), and points as records (mapping.py)."""

from __future__ import annotations

import pytest

from gateway.influx.lines import LineError, Point, points
from gateway.influx.mapping import to_batches


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
