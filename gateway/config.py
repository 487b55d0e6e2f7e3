"""Gateway configuration, from STORECAST_* environment variables (CONTRACT §9)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from storecast.env import TlsFiles, dev_dir


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
        env = os.environ
        pki = dev_dir() / "pki"
        services = f"{env.get('STORECAST_GRPC_HOST', '127.0.0.1')}:{env.get('STORECAST_GRPC_PORT', '50051')}"
        return cls(
            tls_cert=Path(env.get("STORECAST_TLS_CERT") or pki / "server.cert.pem"),
            tls_key=Path(env.get("STORECAST_TLS_KEY") or pki / "server.key.pem"),
            tls_client_ca=Path(env.get("STORECAST_TLS_CLIENT_CA") or pki / "ca.cert.pem"),
            permissions=Path(env.get("STORECAST_PERMISSIONS") or dev_dir() / "permissions.yaml"),
            http_host=env.get("STORECAST_HTTP_HOST", "127.0.0.1"),
            http_port=int(env.get("STORECAST_HTTP_PORT", "8443")),
            http_workers=int(env.get("STORECAST_HTTP_WORKERS", "1")),
            max_body_bytes=int(env.get("STORECAST_MAX_BODY_BYTES", str(32 * 1024 * 1024))),
            ingest_target=env.get("STORECAST_INGEST_TARGET", services),
            query_target=env.get("STORECAST_QUERY_TARGET", services),
            vector_target=env.get("STORECAST_VECTOR_TARGET", services),
            grpc_timeout_s=float(env.get("STORECAST_GRPC_TIMEOUT_S", "30")),
            body_timeout_s=float(env.get("STORECAST_BODY_TIMEOUT_S", "60")),
            grpc_client_tls=TlsFiles.from_env(env, "STORECAST_GRPC_CLIENT"),
            trusted_cert_header=env.get("STORECAST_TRUSTED_CERT_HEADER", "").strip().lower() or None,
        )
