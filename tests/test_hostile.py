"""Hostile input: requests built to hurt, each answered in the JSON envelope, nothing stored."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import Storecast, assert_error, ok, put
from tests.helpers import T0, raw_exchange, raw_put


def test_many_headers_are_refused(storecast: Storecast) -> None:
    headers = b"".join(b"X-Filler-%d: %s\r\n" % (i, b"x" * 100) for i in range(2000))
    status, body = raw_exchange(storecast, b"GET /v1/1/production/meter/1 HTTP/1.1\r\nHost: localhost\r\n" + headers + b"\r\n")
    assert status == 400 and b'"status_code":1103' in body and b"headers are larger" in body


def test_an_enormous_url_is_refused(storecast: Storecast) -> None:
    status, body = raw_exchange(
        storecast, b"GET /v1/1/production/meter/1?" + b"a" * 100_000 + b" HTTP/1.1\r\nHost: localhost\r\n\r\n"
    )
    assert status == 400 and b'"status_code":1103' in body and b"URL is longer" in body


def test_garbage_instead_of_http_is_refused(storecast: Storecast) -> None:
    status, body = raw_exchange(storecast, b"\x00\x01\x02 nonsense\r\n\r\n")
    assert status in (400, 405) and b'"status_code":11' in body


@pytest.mark.parametrize(
    "body",
    [
        b'{"values":[{"timestamp":1,"id":1,"p":' + b"[" * 100_000 + b"]" * 100_000 + b"}]}",
        b"[" * 100_000 + b"]" * 100_000,
        b'{"values":' + b'{"a":' * 50_000 + b"1" + b"}" * 50_000 + b"}",
        b'{"values":[{"timestamp":1,"id":1,"p":1' + b"0" * 100_000 + b"}]}",
        b'{"values":[{"timestamp":1' + b"0" * 100_000 + b',"id":1}]}',
        b'{"values":[{"timestamp":1,"id":1,"p":0.' + b"1" * 100_000 + b"e99999999999}]}",
    ],
    ids=["nested-attribute", "nested-body", "nested-objects", "huge-float", "huge-int", "huge-exponent"],
)
def test_deep_nesting_and_enormous_numbers_are_1303(admin: httpx.Client, site: int, body: bytes) -> None:
    response = raw_put(admin, f"/v1/{site}/production/meter", body)
    assert_error(response, 400, 1303)
    assert_error(admin.get(f"/v1/{site}/production/meter/1"), 400, 1107)


def test_duplicate_keys_take_the_last_value_each_checked(admin: httpx.Client, site: int) -> None:
    # Like JSON.parse: the last occurrence of a key wins, but every occurrence is validated.
    body = b'{"values":[{"timestamp":%d,"id":1,"p":1.0,"p":2.0}]}' % T0
    ok(raw_put(admin, f"/v1/{site}/production/meter", body), 201)
    assert ok(admin.get(f"/v1/{site}/production/meter/1"))["results"][0]["p"] == 2.0
    bad = b'{"values":[{"timestamp":%d,"id":1,"p":"x","p":3.0}]}' % T0
    assert_error(
        raw_put(admin, f"/v1/{site}/production/meter", bad),
        400,
        1303,
        "values[0].p",
    )


def test_a_hundred_thousand_tiny_records(admin: httpx.Client, site: int) -> None:
    values = [{"timestamp": T0 + i, "id": i % 7} for i in range(100_000)]
    ok(put(admin, f"/v1/{site}/production/status", values), 201)
    response = admin.get(f"/v1/{site}/production/status/3", params={"from": T0, "to": T0 + 100_000})
    assert response.status_code == 206 and len(response.json()["results"]) == 1000


def test_unicode_in_the_body_is_fine_where_strings_are_not_expected(admin: httpx.Client, site: int) -> None:
    body = f'{{"values":[{{"timestamp":{T0},"id":1,"p":"１００"}}]}}'
    assert_error(
        raw_put(admin, f"/v1/{site}/production/meter", body.encode()),
        400,
        1303,
        "values[0].p",
    )
    escaped = b'{"values":[{"timestamp":%d,"id":1,"\\u0070":5.0}]}' % T0
    ok(raw_put(admin, f"/v1/{site}/production/meter", escaped), 201)
    assert ok(admin.get(f"/v1/{site}/production/meter/1"))["results"][0]["p"] == 5.0


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("production/meter", b'{"values":[{"timestamp":1,"id":1,"p\xff":1.0}]}'),
        ("production/meter", b'{"values":[{"timestamp":1,"id":1,"p":"\xff"}]}'),
        ("production/meter", b'{"val\xed\xa0\x80ues":[{"timestamp":1,"id":1}]}'),
        ("tariff", b'{"values":[{"id":1,"values":[{"timestamp":1,"label":"on\xffpeak"}]}]}'),
        ("forecast/solar", b'{"values":[{"creation_timestamp":1,"id":1,"values":[{"timestamp":1,"\xc3":1}]}]}'),
    ],
    ids=["in-a-key", "in-a-string-of-the-wrong-type", "surrogate-in-a-key", "in-a-label", "truncated-in-a-key"],
)
def test_bytes_that_are_not_utf8_are_1301_wherever_they_are(admin: httpx.Client, site: int, path: str, body: bytes) -> None:
    # Found while writing the PUT fuzzer: msgspec raises UnicodeDecodeError for keys and strings, which was a 500.
    assert_error(raw_put(admin, f"/v1/{site}/{path}", body), 400, 1301, "UTF-8")
    assert_error(admin.get(f"/v1/{site}/{path}/1"), 400, 1107)


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("tariff", b'{"values":[{"id":0,"values":0x10}]}'),
        ("production/meter", b'{"values":[{"timestamp":"1","id":1}]} and more'),
        ("production/meter", b'{"values":[{"timestamp":1,"id":1,"p":"1"},'),
        ("forecast/solar", b'{"values":[{"creation_timestamp":1,"id":1,"values":[]},{NaN}]}'),
        # Nested deeper than the decoder follows, and never closed.
        ("production/meter", b'{"values":' + b"[" * 100_000),
        ("production/meter", b'{"values":[{"timestamp":1,"id":1,"p":' + b"[" * 100_000 + b'"]}]}'),
    ],
    ids=["hex-number", "trailing-text", "truncated", "nan", "deep-unclosed", "deep-open-string"],
)
def test_a_body_that_is_not_json_is_1301_even_after_a_wrong_type(admin: httpx.Client, site: int, path: str, body: bytes) -> None:
    # Found by the PUT fuzzer: msgspec stops at the first value of a wrong type (1303) before it reads the rest.
    assert_error(raw_put(admin, f"/v1/{site}/{path}", body), 400, 1301, "not UTF-8 JSON")
    assert_error(admin.get(f"/v1/{site}/{path}/1"), 400, 1107)
