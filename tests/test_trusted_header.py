"""Identity behind an ingress: the verified client certificate in a configured header,
only when that mode is on (docs/api/v1.md §4), on real TLS connections to a real gateway."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

from tests.conftest import Pki, Storecast, assert_error, ok, start_storecast, stop_storecast
from tests.helpers import T0

HEADER = "ssl-client-cert"
BODY = {"values": [{"timestamp": T0, "id": 1, "p": 1.0}]}


def escaped_certificate(test_pki: Pki, name: str) -> str:
    """The certificate as ingress-nginx passes it upstream ($ssl_client_escaped_cert)."""
    return quote(Path(test_pki.cert(name)[0]).read_text(), safe="")


@pytest.fixture(scope="module")
def behind_ingress(tmp_path_factory: pytest.TempPathFactory, test_pki: Pki) -> Iterator[Storecast]:
    instance = start_storecast(
        tmp_path_factory.mktemp("behind-ingress"), test_pki, {"STORECAST_TRUSTED_CERT_HEADER": "SSL-Client-Cert"}
    )
    yield instance
    stop_storecast(instance)
    assert instance.process.returncode == 0, instance.log.read_text()


def put_as(client: httpx.Client, site: int, headers: list[tuple[str, str]]) -> httpx.Response:
    return client.put(f"/v1/{site}/production/meter", json=BODY, headers=headers)


# Mode off (the session's storecast): the header is ignored.


def test_off_a_forged_header_without_a_tls_certificate_is_403(storecast: Storecast, test_pki: Pki) -> None:
    with storecast.client(None) as anonymous:
        response = put_as(anonymous, 7, [(HEADER, escaped_certificate(test_pki, "admin"))])
    assert_error(response, 403, 1400, "without a client certificate")


def test_off_the_tls_certificate_wins_over_a_forged_header(storecast: Storecast, test_pki: Pki) -> None:
    with storecast.client("reader") as reader:
        assert_error(put_as(reader, 7, [(HEADER, escaped_certificate(test_pki, "admin"))]), 403, 1400, "'reader' may not write")


# Mode on: the header is the identity, and nothing else is.


def test_on_the_header_certificate_is_the_identity(behind_ingress: Storecast, test_pki: Pki) -> None:
    # The ingress connects without a client certificate of its own.
    with behind_ingress.client(None) as ingress:
        ok(put_as(ingress, 8, [(HEADER, escaped_certificate(test_pki, "admin"))]), 201)
        assert (
            ok(ingress.get("/v1/8/production/meter/1", headers={HEADER: escaped_certificate(test_pki, "reader")}))["results"][0][
                "p"
            ]
            == 1.0
        )
        assert_error(put_as(ingress, 8, [(HEADER, escaped_certificate(test_pki, "reader"))]), 403, 1400, "'reader' may not write")
        assert_error(
            put_as(ingress, 101, [(HEADER, escaped_certificate(test_pki, "site100"))]),
            403,
            1400,
            "'site100' may not write site 101",
        )


def test_on_the_tls_certificate_is_not_an_identity(behind_ingress: Storecast) -> None:
    with behind_ingress.client("admin") as direct:
        assert_error(put_as(direct, 8, []), 403, 1400, "without a client certificate")


@pytest.mark.parametrize(
    "other", ["x-ssl-client-cert", "ssl-client-certificate", "x-forwarded-client-cert", "ssl-client-cert-chain"]
)
def test_on_no_other_header_is_trusted(behind_ingress: Storecast, test_pki: Pki, other: str) -> None:
    with behind_ingress.client(None) as ingress:
        assert_error(
            put_as(ingress, 8, [(other, escaped_certificate(test_pki, "admin"))]), 403, 1400, "without a client certificate"
        )


@pytest.mark.parametrize("name", ["other-ca-admin", "expired-admin"])
def test_on_a_header_certificate_that_does_not_verify_is_no_identity(behind_ingress: Storecast, test_pki: Pki, name: str) -> None:
    with behind_ingress.client(None) as ingress:
        assert_error(
            put_as(ingress, 8, [(HEADER, escaped_certificate(test_pki, name))]), 403, 1400, "without a client certificate"
        )
    assert "certificate refused" in behind_ingress.log.read_text()


@pytest.mark.parametrize(
    "headers",
    [
        [(HEADER, "")],
        [(HEADER, "not%20a%20certificate")],
        # Two values: nothing says which one the ingress vouched for.
        [(HEADER, "admin-placeholder"), (HEADER, "admin-placeholder")],
    ],
)
def test_on_an_empty_garbled_or_repeated_header_is_no_identity(
    behind_ingress: Storecast, test_pki: Pki, headers: list[tuple[str, str]]
) -> None:
    admin = escaped_certificate(test_pki, "admin")
    with behind_ingress.client(None) as ingress:
        response = put_as(ingress, 8, [(key, admin if value == "admin-placeholder" else value) for key, value in headers])
    assert_error(response, 403, 1400, "without a client certificate")
