"""Mutual TLS on the services' gRPC port, when configured.

STORECAST_GRPC_TLS_CERT and STORECAST_GRPC_TLS_KEY are the service's own
certificate and key, STORECAST_GRPC_TLS_CA the CA that callers' certificates
must chain to: with them the port accepts only callers that present such a
certificate (the gateway, internal callers). All three or none.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import grpc

_VARIABLES = ("STORECAST_GRPC_TLS_CERT", "STORECAST_GRPC_TLS_KEY", "STORECAST_GRPC_TLS_CA")


@dataclass(frozen=True, slots=True)
class ServerTls:
    cert: Path
    key: Path
    client_ca: Path

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> ServerTls | None:
        values = [env.get(name, "") for name in _VARIABLES]
        if not any(values):
            return None
        if not all(values):
            missing = [name for name, value in zip(_VARIABLES, values) if not value]
            raise ValueError(f"internal mTLS needs all of {', '.join(_VARIABLES)}; missing {', '.join(missing)}")
        return cls(*(Path(value) for value in values))

    def credentials(self) -> grpc.ServerCredentials:
        return grpc.ssl_server_credentials(
            [(self.key.read_bytes(), self.cert.read_bytes())],
            root_certificates=self.client_ca.read_bytes(),
            require_client_auth=True,
        )
