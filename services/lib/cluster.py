"""ClickHouse cluster mode: the schema on a cluster, and the settings its sessions need.

The single-node DDL (`Table.ddl(database)`) is the source: its statements are
rewritten here into replicated `<name>_local` tables on every host plus a
Distributed table under the single-node name, so the services read and write
the same table names in either mode. A table added to the catalog later, with
whatever engine arguments, key or partitioning its single-node DDL has, gets
its cluster form without changes here; a statement of a shape this module
does not know raises instead of being applied half-translated.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from services.lib.schema import Table

# Every table is keyed by site first and a PUT is for one site, so sharding by
# site sends a whole PUT to one shard (one INSERT there, one part: a PUT stays
# atomic) and keeps every version of a key on one shard, where FINAL merges them.
SHARDING_KEY = "cityHash64(site_id)"

# Cluster names come from configuration and are spliced into DDL.
_CLUSTER_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")

_CREATE = re.compile(
    r"CREATE TABLE IF NOT EXISTS (?P<database>\w+)\.(?P<table>\w+) (?P<columns>\(.*\))"
    r" ENGINE = (?P<engine>\w*MergeTree)(?:\((?P<arguments>[^()]*)\))?(?P<rest>.*)",
    re.S,
)
_ALTER = re.compile(r"ALTER TABLE (?P<database>\w+)\.(?P<table>\w+) (?P<action>ADD COLUMN IF NOT EXISTS .*)", re.S)

# Settings of every store session on a cluster; clickhouse-connect sends them with each query.
CLUSTER_SETTINGS: dict[str, str | int] = {
    # An INSERT into a Distributed table returns once the shard has stored the
    # block, not when it is queued on the receiving node: a 201 means stored,
    # and a failure on the shard fails the PUT. (The alias every server version knows
    # for distributed_foreground_insert.)
    "insert_distributed_sync": 1,
    # Replicated tables drop an INSERT whose block hash matches a recent one; a
    # re-PUT of identical bytes after a different PUT of the same key must
    # replace it again, not vanish and let the older value win.
    "insert_deduplicate": 0,
    # Writes go to the first healthy replica of a shard; reads go there too, so
    # a GET after a 201 sees the write although replication is asynchronous.
    "load_balancing": "in_order",
}


def check_cluster_name(cluster: str) -> str:
    if not _CLUSTER_NAME.fullmatch(cluster):
        raise ValueError(f"not a ClickHouse cluster name: {cluster!r}")
    return cluster


def database_ddl(database: str, cluster: str | None = None) -> str:
    on_cluster = f" ON CLUSTER '{check_cluster_name(cluster)}'" if cluster is not None else ""
    return f"CREATE DATABASE IF NOT EXISTS {database}{on_cluster}"


def cluster_ddl(table: Table, database: str, cluster: str) -> list[str]:
    """`table.ddl(database)` for the cluster: each CREATE becomes the replicated
    local table and the Distributed table, each ALTER applies to both."""
    on_cluster = f"ON CLUSTER '{check_cluster_name(cluster)}'"
    statements: list[str] = []
    for statement in table.ddl(database):
        if created := _CREATE.fullmatch(statement):
            statements += _create_pair(created, on_cluster, cluster)
        elif altered := _ALTER.fullmatch(statement):
            name, local, action = f"{altered['database']}.{altered['table']}", f"{altered['table']}_local", altered["action"]
            statements += [
                f"ALTER TABLE {altered['database']}.{local} {on_cluster} {action}",
                f"ALTER TABLE {name} {on_cluster} {action}",
            ]
        else:
            raise ValueError(f"no cluster form for this statement of {table.name}: {statement[:80]!r}")
    return statements


def _create_pair(created: re.Match[str], on_cluster: str, cluster: str) -> list[str]:
    database, name, columns = created["database"], created["table"], created["columns"]
    if "`site_id`" not in columns:
        raise ValueError(f"{name} has no site_id to shard by")
    local = f"{name}_local"
    # {shard} and {replica} are each host's macros: one replication path per shard.
    arguments = [f"'/clickhouse/tables/{{shard}}/{database}/{local}'", "'{replica}'"]
    if created["arguments"]:
        arguments.append(created["arguments"])
    return [
        f"CREATE TABLE IF NOT EXISTS {database}.{local} {on_cluster} {columns}"
        f" ENGINE = Replicated{created['engine']}({', '.join(arguments)}){created['rest']}",
        f"CREATE TABLE IF NOT EXISTS {database}.{name} {on_cluster} {columns}"
        f" ENGINE = Distributed('{cluster}', '{database}', '{local}', {SHARDING_KEY})",
    ]
