"""Environment configuration every component reads the same way."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import grpc


def dev_dir() -> Path:
    """Where `make run` keeps the embedded store, the dev PKI and permissions."""
    return Path(os.environ.get("STORECAST_DEV_DIR", ".dev")).resolve()


@dataclass(frozen=True, slots=True)
class TlsFiles:
    """A certificate, its key and the CA the other side must chain to: internal mutual TLS.

    Read from <PREFIX>_CERT, <PREFIX>_KEY and <PREFIX>_CA; all three or none
    (none is plaintext gRPC).
    """

    cert: Path
    key: Path
    ca: Path

    @classmethod
    def from_env(cls, env: Mapping[str, str], prefix: str) -> TlsFiles | None:
        names = (f"{prefix}_CERT", f"{prefix}_KEY", f"{prefix}_CA")
        values = [env.get(name, "") for name in names]
        if not any(values):
            return None
        if not all(values):
            missing = [name for name, value in zip(names, values) if not value]
            raise ValueError(f"internal mTLS needs all of {', '.join(names)}; missing {', '.join(missing)}")
        return cls(*(Path(value) for value in values))

    def channel_credentials(self) -> grpc.ChannelCredentials:
        """A caller's: present our certificate, trust services that chain to the CA."""
        return grpc.ssl_channel_credentials(
            root_certificates=self.ca.read_bytes(), private_key=self.key.read_bytes(), certificate_chain=self.cert.read_bytes()
        )

    def server_credentials(self) -> grpc.ServerCredentials:
        """A service's: accept only callers whose certificate chains to the CA."""
        return grpc.ssl_server_credentials(
            [(self.key.read_bytes(), self.cert.read_bytes())], root_certificates=self.ca.read_bytes(), require_client_auth=True
        )
