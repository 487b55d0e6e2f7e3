"""Service configuration, from STORECAST_* environment variables (CONTRACT §9)."""

from __future__ import annotations

import os
from dataclasses import dataclass

from storecast.env import TlsFiles, dev_dir, optional_setting, setting
from storecast.services.lib.batching import BatchSettings
from storecast.services.lib.cluster import check_cluster_name
from storecast.services.lib.retention import Retention


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
    retention: Retention = Retention()

    @classmethod
    def from_env(cls) -> ServiceSettings:
        cluster = optional_setting("STORECAST_CLICKHOUSE_CLUSTER")
        health_port = optional_setting("STORECAST_GRPC_HEALTH_PORT")
        return cls(
            store_url=optional_setting("STORECAST_STORE_URL") or f"chdb://{dev_dir() / 'store'}",
            grpc_host=setting("STORECAST_GRPC_HOST"),
            grpc_port=int(setting("STORECAST_GRPC_PORT")),
            max_records=int(setting("STORECAST_MAX_RECORDS")),
            max_body_bytes=int(setting("STORECAST_MAX_BODY_BYTES")),
            grpc_workers=int(setting("STORECAST_GRPC_WORKERS")),
            store_connections=int(setting("STORECAST_STORE_CONNECTIONS")),
            batching=BatchSettings(
                mode=setting("STORECAST_BATCH_MODE"),
                max_rows=int(setting("STORECAST_BATCH_MAX_ROWS")),
                gather_s=float(setting("STORECAST_BATCH_GATHER_MS")) / 1000,
            ),
            clickhouse_cluster=check_cluster_name(cluster) if cluster else None,
            grpc_tls=TlsFiles.from_env(os.environ, "STORECAST_GRPC_TLS"),
            grpc_health_port=int(health_port) if health_port else None,
            retention=Retention.parse(optional_setting("STORECAST_RETENTION")),
        )
