"""Service configuration, from STORECAST_* environment variables (CONTRACT §9)."""

from __future__ import annotations

import os
from dataclasses import dataclass

from services.lib.batching import GROUP, BatchSettings
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
    store_connections: int
    batching: BatchSettings
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
            # A PUT waiting for its batch's insert holds a worker thread, idle; the
            # store's connections bound how many engine calls run at once.
            grpc_workers=int(env.get("STORECAST_GRPC_WORKERS", "64")),
            store_connections=int(env.get("STORECAST_STORE_CONNECTIONS", "8")),
            batching=BatchSettings(
                mode=env.get("STORECAST_BATCH_MODE", GROUP),
                max_rows=int(env.get("STORECAST_BATCH_MAX_ROWS", "100000")),
                gather_s=float(env.get("STORECAST_BATCH_GATHER_MS", "5")) / 1000,
            ),
            clickhouse_cluster=check_cluster_name(cluster) if (cluster := env.get("STORECAST_CLICKHOUSE_CLUSTER")) else None,
            grpc_tls=TlsFiles.from_env(env, "STORECAST_GRPC_TLS"),
            grpc_health_port=int(port) if (port := env.get("STORECAST_GRPC_HEALTH_PORT")) else None,
        )
