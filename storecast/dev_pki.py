"""A development PKI: a CA, a server certificate, client certificates, permissions.

`storecast pki` writes it for `make run`; the tests build their own
certificates (other CAs, expired, site-limited) with the same functions.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

DEV_CLIENTS = {"admin": ("*", ["read", "write"]), "reader": ("*", ["read"])}
# The password of the dev admin's PKCS#12 file, for a browser to import (docs/console.md).
# Not a secret: it only keeps importers that refuse an empty password (macOS Keychain) working.
DEV_P12_PASSWORD = "storecast"


@dataclass(frozen=True, slots=True)
class Issued:
    certificate: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    def write(self, directory: Path, stem: str) -> tuple[Path, Path]:
        directory.mkdir(parents=True, exist_ok=True)
        cert_path, key_path = directory / f"{stem}.cert.pem", directory / f"{stem}.key.pem"
        cert_path.write_bytes(self.certificate.public_bytes(serialization.Encoding.PEM))
        key_path.write_bytes(
            self.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        )
        key_path.chmod(0o600)
        return cert_path, key_path

    def write_pkcs12(self, directory: Path, stem: str, password: str, ca: x509.Certificate) -> Path:
        """The certificate, its key and the CA in one PKCS#12 file, as browsers import a client identity."""
        path = directory / f"{stem}.p12"
        encryption = serialization.BestAvailableEncryption(password.encode())
        path.write_bytes(pkcs12.serialize_key_and_certificates(stem.encode(), self.key, self.certificate, [ca], encryption))
        path.chmod(0o600)
        return path


def _name(cn: str) -> x509.Name:
    return x509.Name(
        [x509.NameAttribute(NameOID.ORGANIZATION_NAME, "storecast dev"), x509.NameAttribute(NameOID.COMMON_NAME, cn)]
    )


def new_ca(cn: str = "storecast dev CA", days: int = 3650) -> Issued:
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(_name(cn))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return Issued(certificate, key)


def issue(
    ca: Issued,
    cn: str,
    *,
    client: bool = True,
    server_names: tuple[str, ...] = (),
    not_before: dt.datetime | None = None,
    not_after: dt.datetime | None = None,
) -> Issued:
    """A leaf certificate for a client (by CN), a server (by DNS names and IPs), or both."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    usages = ([ExtendedKeyUsageOID.CLIENT_AUTH] if client else []) + ([ExtendedKeyUsageOID.SERVER_AUTH] if server_names else [])
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(ca.certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before or now - dt.timedelta(minutes=5))
        .not_valid_after(not_after or now + dt.timedelta(days=825))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()), critical=False)
    )
    if server_names:
        alt_names: list[x509.GeneralName] = []
        for name in server_names:
            try:
                alt_names.append(x509.IPAddress(ipaddress.ip_address(name)))
            except ValueError:
                alt_names.append(x509.DNSName(name))
        builder = builder.add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
    return Issued(builder.sign(ca.key, hashes.SHA256()), key)


def permissions_yaml(clients: Mapping[str, tuple[str | Sequence[int], Sequence[str]]]) -> str:
    lines = ["clients:"]
    for cn, (sites, access) in clients.items():
        sites_text = '"*"' if sites == "*" else "[" + ", ".join(str(s) for s in sites) + "]"
        lines += [f"  - cn: {cn}", f"    sites: {sites_text}", f"    access: [{', '.join(access)}]"]
    return "\n".join(lines) + "\n"


def create_dev_pki(directory: Path, permissions: Path) -> None:
    """The CA, a server certificate for localhost, `admin` and `reader` (admin also as admin.p12
    for a browser); permissions if missing."""
    ca = new_ca()
    ca.write(directory, "ca")
    issue(ca, "localhost", client=False, server_names=("localhost", "127.0.0.1", "::1")).write(directory, "server")
    for cn in DEV_CLIENTS:
        client = issue(ca, cn)
        client.write(directory, cn)
        if cn == "admin":
            client.write_pkcs12(directory, cn, DEV_P12_PASSWORD, ca.certificate)
    if not permissions.exists():
        permissions.parent.mkdir(parents=True, exist_ok=True)
        permissions.write_text(permissions_yaml(DEV_CLIENTS))
