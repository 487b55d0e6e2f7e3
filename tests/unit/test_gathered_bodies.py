"""A body gathered from PutProductionStream's pieces (a bytearray) decodes, or is refused, as the same bytes sent whole."""

from __future__ import annotations

import numpy as np
import pytest

from services.ingest.service import RecordInput
from services.lib.records.payload import SLICED_BODY_BYTES
from storecast.catalog import EQUIPMENT_TYPES
from storecast.status import ApiFailure
from tests.unit.test_payload import CONTENT_ERRORS, INTEGRAL_REFUSALS, record

REFUSED = [
    *((name, body) for name, body, _ in CONTENT_ERRORS + INTEGRAL_REFUSALS if name in EQUIPMENT_TYPES),
    ("meter", b'{"values":[{"timestamp":1,"id":1}'),  # truncated: 1301
    ("meter", b'{"values":[{"timestamp":1,"id":1,"p":"\xff"}]}'),  # not UTF-8: 1301
    ("battery", record(b'"soc":NaN')),
    ("meter", b"   "),  # empty: 1302
]


@pytest.mark.parametrize(("type_name", "body"), REFUSED)
def test_a_gathered_body_is_refused_as_its_bytes_are(type_name: str, body: bytes) -> None:
    records = RecordInput(EQUIPMENT_TYPES[type_name])
    with pytest.raises(ApiFailure) as whole:
        records.columns(body)
    with pytest.raises(ApiFailure) as gathered:
        records.columns(bytearray(body))
    assert (gathered.value.code, gathered.value.message) == (whole.value.code, whole.value.message)


@pytest.mark.parametrize("records", [3, SLICED_BODY_BYTES // 40])  # decoded whole, then in slices
def test_a_gathered_body_decodes_as_its_bytes_do(records: int) -> None:
    body = (
        b'{"values":[' + b",".join(b'{"timestamp":%d,"id":%d,"p":%d.5,"q":null}' % (i, i % 7, i) for i in range(records)) + b"]}"
    )
    renewable = RecordInput(EQUIPMENT_TYPES["renewable"])
    whole, gathered = renewable.columns(body), renewable.columns(bytearray(body))
    assert len(whole[0]) == records
    for expected, column in zip(whole, gathered, strict=True):
        np.testing.assert_array_equal(np.asarray(column), np.asarray(expected))
