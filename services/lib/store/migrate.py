"""`storecast migrate`: the whole schema, applied once, then exit.

In Kubernetes a Helm pre-install/pre-upgrade hook runs it before any new
service replica starts. Every statement is idempotent (IF NOT EXISTS), so a
retried or repeated migration is harmless, and additive, so replicas of the
previous release keep working against the new schema while they drain.
"""

from __future__ import annotations

import logging

from services.lib.config import ServiceSettings
from services.lib.store.engine import Store
from services.lib.store.retention import Retention
from services.lib.store.schema import all_tables, database_ddl

log = logging.getLogger("storecast.migrate")


def schema_statements(
    database: str, cluster: str | None, retention: Retention | None = None, fsync: bool | None = None
) -> list[str]:
    statements = [statement for table in all_tables() for statement in table.ddl(database, cluster, retention, fsync)]
    return [database_ddl(database, cluster), *statements]


def migrate(settings: ServiceSettings) -> None:
    store = Store(settings.store_url, pool_size=1, cluster=settings.clickhouse_cluster, ca_file=settings.store_ca)
    try:
        statements = schema_statements(store.database, settings.clickhouse_cluster, settings.retention, settings.fsync)
        store.apply(statements)
    finally:
        store.close()
    where = f"cluster {settings.clickhouse_cluster}" if settings.clickhouse_cluster else "a single node"
    log.info("schema of %d tables applied to %s on %s (%d statements)", len(all_tables()), store.database, where, len(statements))
