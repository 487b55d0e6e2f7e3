"""Service configuration, from STORECAST_* environment variables (docs/api/v1.md §9)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from services.lib.records.group_commit import BatchSettings
from services.lib.store.cluster import check_cluster_name
from services.lib.store.retention import Retention
from storecast.env import TlsFiles, dev_dir, optional_setting, setting


@dataclass(frozen=True, slots=True)
class FlushSettings:
    """How often the write-ahead log's records go to the store: every `interval_s`, or once `max_rows` wait."""

    interval_s: float = 1.0
    max_rows: int = 100_000


@dataclass(frozen=True, slots=True)
class LogSettings:
    """The ingest service's write-ahead log and hot tier (docs/architecture/recent-writes.md)."""

    directory: Path
    max_bytes: int
    flush: FlushSettings
    hot_window_s: float
    hot_max_bytes: int
    sync: bool = True

    @classmethod
    def from_env(cls, store_url: str, fsync: bool) -> LogSettings | None:
        """None with STORECAST_LOG=0: production PUTs then wait for their insert, as before the log.
        By default the log sits beside an embedded store's directory (it belongs to that store)."""
        if not _flag("STORECAST_LOG", setting("STORECAST_LOG")):
            return None
        beside = Path(store_url.removeprefix("chdb://")).parent if store_url.startswith("chdb:///") else dev_dir()
        return cls(
            directory=Path(optional_setting("STORECAST_LOG_DIR") or beside / "wal"),
            max_bytes=int(setting("STORECAST_LOG_MAX_BYTES")),
            flush=FlushSettings(
                interval_s=float(setting("STORECAST_FLUSH_INTERVAL")), max_rows=int(setting("STORECAST_FLUSH_MAX_ROWS"))
            ),
            hot_window_s=float(setting("STORECAST_HOT_WINDOW")),
            hot_max_bytes=int(setting("STORECAST_HOT_MAX_BYTES")),
            sync=fsync,
        )


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
    # Inserts fsynced before they are acknowledged (STORECAST_FSYNC, on by default).
    fsync: bool = True
    # On a cluster: replicas that must have an insert before it is acknowledged ("auto": a majority).
    insert_quorum: str = "auto"
    # CA bundle for an https:// store URL.
    store_ca: str | None = None
    # A Unix socket to listen on instead of the TCP port (serve all's default).
    grpc_socket: str | None = None
    # Rollup cells kept up by ingest and read by aggregations (STORECAST_ROLLUPS, on by default).
    rollups: bool = True
    # Production PUTs acknowledged from a write-ahead log, recent reads from memory (None: off).
    log: LogSettings | None = None
    # A query service's ingest replicas, asked for their recent writes (STORECAST_INGEST_REPLICAS, comma-separated).
    ingest_replicas: tuple[str, ...] = ()
    # Answers of settled production reads kept in memory (STORECAST_ANSWER_CACHE_BYTES; 0: none).
    answer_cache_bytes: int = 0

    @classmethod
    def from_env(cls) -> ServiceSettings:
        store_url = optional_setting("STORECAST_STORE_URL") or f"chdb://{dev_dir() / 'store'}"
        cluster = optional_setting("STORECAST_CLICKHOUSE_CLUSTER")
        health_port = optional_setting("STORECAST_GRPC_HEALTH_PORT")
        return cls(
            store_url=store_url,
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
            fsync=_flag("STORECAST_FSYNC", setting("STORECAST_FSYNC")),
            insert_quorum=_quorum(setting("STORECAST_INSERT_QUORUM")),
            store_ca=optional_setting("STORECAST_STORE_CA"),
            grpc_socket=optional_setting("STORECAST_GRPC_SOCKET"),
            rollups=_flag("STORECAST_ROLLUPS", setting("STORECAST_ROLLUPS")),
            ingest_replicas=tuple(
                t.strip() for t in (optional_setting("STORECAST_INGEST_REPLICAS") or "").split(",") if t.strip()
            ),
            log=LogSettings.from_env(store_url, _flag("STORECAST_FSYNC", setting("STORECAST_FSYNC"))),
            answer_cache_bytes=int(setting("STORECAST_ANSWER_CACHE_BYTES")),
        )


def _targets(text: str | None) -> tuple[str, ...]:
    return tuple(target.strip() for target in (text or "").split(",") if target.strip())


def _flag(name: str, value: str) -> bool:
    if value not in ("0", "1"):
        raise ValueError(f"{name} must be 0 or 1, got {value!r}")
    return value == "1"


def _quorum(value: str) -> str:
    if value != "auto" and not value.isdigit():
        raise ValueError(f"STORECAST_INSERT_QUORUM must be auto or a number of replicas, got {value!r}")
    return value
