"""Identity and permissions: who may read or write what, checked on real TLS handshakes."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import Storecast, assert_error, ok, put
from tests.helpers import T0, raw_exchange


def test_no_certificate_is_403(storecast: Storecast, site: int) -> None:
    with storecast.client(None) as anonymous:
        assert_error(anonymous.get(f"/v1/{site}/production/meter/1"), 403, 1400, "without a client certificate")
        assert_error(put(anonymous, f"/v1/{site}/production/meter", [{"timestamp": T0, "id": 1}]), 403, 1400)


def test_identity_is_checked_before_category_type_and_id(storecast: Storecast) -> None:
    with storecast.client(None) as anonymous:
        assert_error(anonymous.get("/v1/100/nope/x/y"), 403, 1400)
        assert_error(anonymous.get("/v1/100/production/toaster/1"), 403, 1400)
        assert_error(anonymous.get("/v1/100/production/meter/x"), 403, 1400)


def test_a_reader_may_read_but_not_write(storecast: Storecast, admin: httpx.Client, site: int) -> None:
    ok(put(admin, f"/v1/{site}/production/meter", [{"timestamp": T0, "id": 1, "p": 1.0}]), 201)
    with storecast.client("reader") as reader:
        assert ok(reader.get(f"/v1/{site}/production/meter/1"))["results"][0]["p"] == 1.0
        assert_error(
            put(reader, f"/v1/{site}/production/meter", [{"timestamp": T0, "id": 1, "p": 2.0}]),
            403,
            1400,
            "'reader' may not write",
        )
    assert ok(admin.get(f"/v1/{site}/production/meter/1"))["results"][0]["p"] == 1.0


def test_a_writer_may_write_but_not_read(storecast: Storecast) -> None:
    with storecast.client("writer-only") as writer:
        ok(put(writer, "/v1/7/production/meter", [{"timestamp": T0, "id": 1, "p": 1.0}]), 201)
        assert_error(writer.get("/v1/7/production/meter/1"), 403, 1400)


def test_a_site_limited_certificate_keeps_to_its_site(storecast: Storecast) -> None:
    with storecast.client("site100") as limited:
        ok(put(limited, "/v1/100/production/meter", [{"timestamp": T0, "id": 1, "p": 1.0}]), 201)
        ok(limited.get("/v1/100/production/meter/1"))
        assert_error(limited.get("/v1/101/production/meter/1"), 403, 1400, "site 101")
        assert_error(put(limited, "/v1/101/production/meter", [{"timestamp": T0, "id": 1}]), 403, 1400)


def test_a_certificate_unknown_to_the_permissions_is_403(storecast: Storecast) -> None:
    with storecast.client("stranger") as stranger:
        assert_error(stranger.get("/v1/100/production/meter/1"), 403, 1400, "'stranger'")


@pytest.mark.parametrize("name", ["other-ca-admin", "expired-admin", "server-only-admin"])
def test_certificates_that_do_not_verify_fail_the_handshake(storecast: Storecast, name: str) -> None:
    # The CN says "admin", but the certificate is of another CA, expired, or not for clients:
    # the TLS layer refuses it, so no request is ever served with it.
    with storecast.client(name) as client, pytest.raises((httpx.ConnectError, httpx.ReadError, httpx.RemoteProtocolError)):
        client.get("/v1/100/production/meter/1")


def raw_request(storecast: Storecast, request_line: str) -> tuple[int, bytes]:
    """One HTTP/1.1 request with the path sent verbatim (clients normalise `..`)."""
    host = storecast.base_url.removeprefix("https://").split(":")[0]
    return raw_exchange(storecast, f"{request_line}\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())


@pytest.mark.parametrize(
    ("path", "status", "code"),
    [
        ("/v1/../v1/100/production/meter/1", 404, b"1101"),
        ("/v1/100/production/meter/..", 400, b"1107"),
        ("/v1/../production/meter/1", 400, b"1104"),
        ("/v1/100/production/../1", 400, b"1106"),
        ("/v1/100%2Fproduction/meter/1", 400, b"1104"),
    ],
)
def test_dot_segments_are_not_resolved(storecast: Storecast, path: str, status: int, code: bytes) -> None:
    got_status, body = raw_request(storecast, f"GET {path} HTTP/1.1")
    assert got_status == status, body
    assert b'"status_code":' + code in body
