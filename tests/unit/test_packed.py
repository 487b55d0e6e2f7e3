"""storecast/packed.py: a Column written from an array's bytes is the message protobuf builds from the values."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from storecast.packed import double_column
from storecast.v1 import records_pb2


@settings(max_examples=200, deadline=None)
@given(
    name=st.text(max_size=200),
    values=hnp.arrays(np.float64, st.integers(0, 3000), elements=st.floats(allow_nan=False)),
    nulls=st.booleans(),
)
def test_a_column_from_bytes_is_the_column_from_values(name: str, values: np.ndarray, nulls: bool) -> None:
    null_map = (values > 0).astype(np.uint8).tobytes() if nulls else b""
    built = records_pb2.Column(name=name, doubles=values.tolist(), null_map=null_map)
    written = double_column(name, values, null_map)
    assert written == built
    assert written.SerializeToString(deterministic=True) == built.SerializeToString(deterministic=True)


def test_values_of_another_dtype_or_layout_are_written_as_doubles() -> None:
    values = np.arange(10, dtype=np.int64)[::2]
    assert list(double_column("x", values).doubles) == [0.0, 2.0, 4.0, 6.0, 8.0]
