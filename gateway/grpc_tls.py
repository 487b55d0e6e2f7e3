"""The gateway's side of internal mutual TLS: the certificate it presents to the services.

STORECAST_GRPC_CLIENT_CERT and STORECAST_GRPC_CLIENT_KEY are the gateway's
client certificate and key, STORECAST_GRPC_CLIENT_CA the CA the services'
certificates must chain to (their names must match the targets' host names,
e.g. the Kubernetes Service names). All three or none; none is plaintext gRPC.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import grpc

_VARIABLES = ("STORECAST_GRPC_CLIENT_CERT", "STORECAST_GRPC_CLIENT_KEY", "STORECAST_GRPC_CLIENT_CA")


@dataclass(frozen=True, slots=True)
class ClientTls:
    cert: Path
    key: Path
    server_ca: Path

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> ClientTls | None:
        values = [env.get(name, "") for name in _VARIABLES]
        if not any(values):
            return None
        if not all(values):
            missing = [name for name, value in zip(_VARIABLES, values) if not value]
            raise ValueError(f"internal mTLS needs all of {', '.join(_VARIABLES)}; missing {', '.join(missing)}")
        return cls(*(Path(value) for value in values))

    def credentials(self) -> grpc.ChannelCredentials:
        return grpc.ssl_channel_credentials(
            root_certificates=self.server_ca.read_bytes(),
            private_key=self.key.read_bytes(),
            certificate_chain=self.cert.read_bytes(),
        )
