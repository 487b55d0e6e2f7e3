"""ClickHouse cluster mode: how tables are sharded, and the settings its sessions need.

On a cluster each table is a replicated `<name>_local` table on every host plus
a Distributed table under the single-node name, so the services read and write
the same table names in either mode; `Table.ddl` (services/lib/store/schema.py)
renders both forms from the table's fields.
"""

from __future__ import annotations

import re

# Every table is keyed by site first and a PUT is for one site, so sharding by
# site sends a whole PUT to one shard (one INSERT there, one part: a PUT stays
# atomic) and keeps every version of a key on one shard, where FINAL merges them.
SHARDING_KEY = "cityHash64(site_id)"

# Cluster names come from configuration and are spliced into DDL.
_CLUSTER_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")

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


def cluster_settings(insert_quorum: str) -> dict[str, str | int]:
    """CLUSTER_SETTINGS, and how many replicas of a shard must hold an insert before
    it is acknowledged ("auto": a majority), quorum inserts running in parallel."""
    return {**CLUSTER_SETTINGS, "insert_quorum": insert_quorum, "insert_quorum_parallel": 1}


def check_cluster_name(cluster: str) -> str:
    if not _CLUSTER_NAME.fullmatch(cluster):
        raise ValueError(f"not a ClickHouse cluster name: {cluster!r}")
    return cluster
