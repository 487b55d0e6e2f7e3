"""The gRPC services of one process: the store, its schema, and the registered targets."""

from __future__ import annotations

import gc

from services.lib.config import ServiceSettings
from services.lib.reads.pending import PendingSpans
from services.lib.recent.answer import InProcess, RecentReads
from services.lib.rpc.admission import AdmissionInterceptor
from services.lib.rpc.readiness import StoreReadiness
from services.lib.rpc.server import Registration, RpcServer, serve
from services.lib.store.engine import Store
from services.lib.store.schema import all_tables
from storecast.memory import reuse_freed_blocks
from storecast.v1 import ingest_pb2


def _registrations(targets: tuple[str, ...], store: Store, settings: ServiceSettings) -> list[Registration]:
    registrations = []
    # In one process the query service reads what the ingest service holds in memory (services/lib/recent/).
    recent: RecentReads | None = None
    # And its rollup marks, on the embedded store, which only this process writes (services/lib/reads/pending.py).
    marks: PendingSpans | None = None
    if "ingest" in targets:
        from services.ingest.service import IngestService
        from services.ingest.service import register as register_ingest

        ingest = IngestService(
            store,
            settings.batching,
            settings.retention,
            rollups=settings.rollups,
            log_settings=settings.log,
            max_body_bytes=settings.max_body_bytes,
        )
        recent = None if ingest.flusher is None else InProcess(ingest.flusher)
        marks = ingest.pending_spans
        registrations.append(register_ingest(ingest))
    # Replicas named: every reader asks them all, this process's own ingest among them.
    if settings.ingest_replicas and ("query" in targets or "vector" in targets):
        from services.query.replicas import IngestReplicas

        credentials = settings.grpc_tls.channel_credentials() if settings.grpc_tls else None
        recent = IngestReplicas(settings.ingest_replicas, credentials)
    if "query" in targets:
        from services.query.service import register as register_query

        registrations.append(
            register_query(
                store,
                settings.max_records,
                settings.retention,
                rollups=settings.rollups,
                recent=recent,
                marks=marks,
                answer_cache_bytes=settings.answer_cache_bytes,
            )
        )
        from services.inventory.service import register as register_inventory

        registrations.append(register_inventory(store, settings.retention, recent))
    if "vector" in targets:
        from services.vector.service import register as register_vector

        registrations.append(register_vector(store, settings.max_records, settings.batching, settings.retention, recent))
    return registrations


def _without_store(targets: tuple[str, ...], settings: ServiceSettings) -> frozenset[str]:
    """What answers while the store is down: production PUTs, into the write-ahead log."""
    if "ingest" in targets and settings.log is not None:
        ingest = ingest_pb2.DESCRIPTOR.services_by_name["Ingest"].full_name
        return frozenset({f"/{ingest}/{put}" for put in ("PutProduction", "PutProductionMany", "PutProductionStream")})
    return frozenset()


def start_services(targets: tuple[str, ...]) -> tuple[RpcServer, Store]:
    # A PUT decodes thousands of records at once; the default gen-0 threshold
    # (700 allocations) would run the cycle collector dozens of times per body.
    gc.set_threshold(50_000, 20, 20)
    reuse_freed_blocks()
    settings = ServiceSettings.from_env()
    store = Store(
        settings.store_url,
        pool_size=settings.store_connections,
        cluster=settings.clickhouse_cluster,
        insert_quorum=settings.insert_quorum,
        ca_file=settings.store_ca,
        connect=False,
    )
    # On a cluster the schema is `storecast migrate`'s, run once per release:
    # ON CLUSTER DDL from every starting replica would wait on every host.
    schema: list[str] = []
    if settings.clickhouse_cluster is None:
        for table in all_tables():
            schema += table.ddl(store.database, retention=settings.retention, fsync=settings.fsync)
    # Opens the store and applies the schema now; a server store that cannot be reached, later (NOT_SERVING meanwhile).
    readiness = StoreReadiness(store, schema)
    readiness.open()
    server = serve(
        f"unix:{settings.grpc_socket}" if settings.grpc_socket else f"{settings.grpc_host}:{settings.grpc_port}",
        _registrations(targets, store, settings),
        workers=settings.grpc_workers,
        max_message_bytes=settings.max_body_bytes + 1024 * 1024,
        credentials=settings.grpc_tls.server_credentials() if settings.grpc_tls else None,
        health_address=f"{settings.grpc_host}:{settings.grpc_health_port}" if settings.grpc_health_port else None,
        interceptors=[AdmissionInterceptor.from_env(readiness.check_ready, _without_store(targets, settings))],
        publish_health=readiness.attach,
    )
    return server, store
