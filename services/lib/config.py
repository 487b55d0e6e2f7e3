"""Service configuration, from STORECAST_* environment variables (CONTRACT §9)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from services.lib.cluster import check_cluster_name
from services.lib.grpc_tls import ServerTls


def dev_dir() -> Path:
    """Where `make run` keeps the embedded store, the dev PKI and permissions."""
    return Path(os.environ.get("STORECAST_DEV_DIR", ".dev")).resolve()


@dataclass(frozen=True, slots=True)
class ServiceSettings:
    store_url: str
    grpc_host: str
    grpc_port: int
    max_records: int
    max_body_bytes: int
    grpc_workers: int
    clickhouse_cluster: str | None = None
    grpc_tls: ServerTls | None = None
    grpc_health_port: int | None = None

    @classmethod
    def from_env(cls) -> ServiceSettings:
        env = os.environ
        return cls(
            store_url=env.get("STORECAST_STORE_URL") or f"chdb://{dev_dir() / 'store'}",
            grpc_host=env.get("STORECAST_GRPC_HOST", "127.0.0.1"),
            grpc_port=int(env.get("STORECAST_GRPC_PORT", "50051")),
            max_records=int(env.get("STORECAST_MAX_RECORDS", "100000")),
            max_body_bytes=int(env.get("STORECAST_MAX_BODY_BYTES", str(32 * 1024 * 1024))),
            grpc_workers=int(env.get("STORECAST_GRPC_WORKERS", "8")),
            clickhouse_cluster=check_cluster_name(cluster) if (cluster := env.get("STORECAST_CLICKHOUSE_CLUSTER")) else None,
            grpc_tls=ServerTls.from_env(env),
            grpc_health_port=int(port) if (port := env.get("STORECAST_GRPC_HEALTH_PORT")) else None,
        )
