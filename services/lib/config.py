"""Service configuration, from STORECAST_* environment variables (CONTRACT §9)."""

from __future__ import annotations

import os
from dataclasses import dataclass

from services.lib.cluster import check_cluster_name
from storecast.env import TlsFiles, dev_dir


@dataclass(frozen=True, slots=True)
class ServiceSettings:
    store_url: str
    grpc_host: str
    grpc_port: int
    max_records: int
    max_body_bytes: int
    grpc_workers: int
    clickhouse_cluster: str | None = None
    grpc_tls: TlsFiles | None = None
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
            grpc_tls=TlsFiles.from_env(env, "STORECAST_GRPC_TLS"),
            grpc_health_port=int(port) if (port := env.get("STORECAST_GRPC_HEALTH_PORT")) else None,
        )
