"""Gateway configuration, from STORECAST_* environment variables (docs/api/v1.md §9)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from storecast.env import TlsFiles, dev_dir, grpc_address, optional_setting, setting


@dataclass(frozen=True, slots=True)
class GatewaySettings:
    tls_cert: Path
    tls_key: Path
    tls_client_ca: Path
    permissions: Path
    http_host: str
    http_port: int
    # Gateway processes `storecast serve all` starts (a lone `serve gateway` is one).
    http_workers: int
    max_body_bytes: int
    ingest_target: str
    query_target: str
    vector_target: str
    grpc_timeout_s: float
    body_timeout_s: float
    grpc_client_tls: TlsFiles | None = None
    # The header an ingress puts the verified client certificate in (gateway/identity.py); None: off.
    trusted_cert_header: str | None = None

    @classmethod
    def from_env(cls) -> GatewaySettings:
        pki = dev_dir() / "pki"
        services = grpc_address()
        return cls(
            tls_cert=Path(optional_setting("STORECAST_TLS_CERT") or pki / "server.cert.pem"),
            tls_key=Path(optional_setting("STORECAST_TLS_KEY") or pki / "server.key.pem"),
            tls_client_ca=Path(optional_setting("STORECAST_TLS_CLIENT_CA") or pki / "ca.cert.pem"),
            permissions=Path(optional_setting("STORECAST_PERMISSIONS") or dev_dir() / "permissions.yaml"),
            http_host=setting("STORECAST_HTTP_HOST"),
            http_port=int(setting("STORECAST_HTTP_PORT")),
            http_workers=int(setting("STORECAST_HTTP_WORKERS")),
            max_body_bytes=int(setting("STORECAST_MAX_BODY_BYTES")),
            ingest_target=optional_setting("STORECAST_INGEST_TARGET") or services,
            query_target=optional_setting("STORECAST_QUERY_TARGET") or services,
            vector_target=optional_setting("STORECAST_VECTOR_TARGET") or services,
            grpc_timeout_s=float(setting("STORECAST_GRPC_TIMEOUT_S")),
            body_timeout_s=float(setting("STORECAST_BODY_TIMEOUT_S")),
            grpc_client_tls=TlsFiles.from_env(os.environ, "STORECAST_GRPC_CLIENT"),
            trusted_cert_header=(optional_setting("STORECAST_TRUSTED_CERT_HEADER") or "").strip().lower() or None,
        )
