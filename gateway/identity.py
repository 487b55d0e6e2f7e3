"""Who is calling: the CN of a verified client certificate (docs/api/v1.md §4).

Off by default: the identity is the certificate of the TLS connection
(gateway/tls.py), and no header is ever read for it.

Behind an ingress that verifies client certificates and terminates their TLS
(ingress-nginx with auth-tls-verify-client and
auth-tls-pass-certificate-to-upstream), STORECAST_TRUSTED_CERT_HEADER names
the one header that carries the verified certificate, URL-encoded PEM
(`ssl-client-cert` for ingress-nginx). Then the identity comes from that
header only: the TLS peer is the ingress, not a client, so a certificate on
the connection is no identity, and no other header is trusted. The header's
certificate is checked again against STORECAST_TLS_CLIENT_CA (chain, validity,
client usage) so a header forged around the ingress cannot name a
self-made certificate; only the ingress's handshake proves the caller holds
the key, which is why the gateway must be reachable through the ingress alone.
"""

from __future__ import annotations

import datetime as dt
import logging
from functools import lru_cache
from pathlib import Path
from urllib.parse import unquote

from cryptography import x509
from cryptography.x509 import verification
from starlette.types import Scope

from gateway.config import GatewaySettings
from gateway.tls import client_common_name, common_name

log = logging.getLogger("storecast.gateway")

# A client certificate need not name a host; everything else is the WebPKI
# profile that Python's ssl also enforces on the direct path.
_END_ENTITY_POLICY = verification.ExtensionPolicy.webpki_defaults_ee().may_be_present(
    x509.SubjectAlternativeName, verification.Criticality.AGNOSTIC, None
)


def client_identity(scope: Scope, settings: GatewaySettings) -> str | None:
    """The caller's CN, or None when there is no verified certificate."""
    if settings.trusted_cert_header is None:
        return client_common_name(scope)
    pem = header_certificate(scope, settings.trusted_cert_header)
    return verified_common_name(pem, settings.tls_client_ca) if pem is not None else None


def header_certificate(scope: Scope, header: str) -> str | None:
    """The URL-decoded PEM of the one `header`; None if absent, empty or repeated
    (a repeated header has no single value to trust)."""
    name = header.encode("latin-1")
    values = [value for key, value in scope["headers"] if key == name]
    if len(values) != 1:
        return None
    pem = unquote(values[0].decode("latin-1"))
    return pem if pem.strip() else None


def verified_common_name(pem: str, client_ca: Path) -> str | None:
    try:
        certificate = x509.load_pem_x509_certificate(pem.encode())
    except ValueError:
        log.warning("trusted certificate header holds no PEM certificate")
        return None
    verifier = (
        verification.PolicyBuilder()
        .store(_trust_store(client_ca))
        .time(dt.datetime.now(dt.UTC))
        .extension_policies(ca_policy=verification.ExtensionPolicy.webpki_defaults_ca(), ee_policy=_END_ENTITY_POLICY)
        .build_client_verifier()
    )
    try:
        verifier.verify(certificate, [])
    except verification.VerificationError as error:
        log.warning("trusted certificate header: certificate refused: %s", error)
        return None
    return common_name(pem)


@lru_cache(maxsize=4)
def _trust_store(client_ca: Path) -> verification.Store:
    return verification.Store(x509.load_pem_x509_certificates(client_ca.read_bytes()))
