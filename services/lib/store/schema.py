"""Table layouts, derived from the catalog, and their DDL on a single node or a cluster.

Production: one table per equipment type, one Nullable column per attribute,
sorted by (site_id, id, timestamp) so a range of one equipment is one
contiguous scan. ReplacingMergeTree keeps the last inserted row of a key;
reads keep the newest version of each key (`keys.newest_versions`) so a
replaced record is never seen twice. There is no
partitioning: each PUT is one INSERT of one block, hence one part, which is
what makes it atomic.

Tariffs are keyed per period, so they are laid out like production records.

Forecasts (one table per forecast type) and commitments: one row per vector,
keyed (site_id, id, creation_timestamp), its periods in parallel arrays
`values.timestamp`, `values.<attribute>` sorted by timestamp. Replacing a
vector is then replacing one row, which a single-row insert does atomically,
and the latest vintage of an id is the last row of its key range. docs/architecture/vectors.md
gives the reasons and the measurements.
"""

from __future__ import annotations

from dataclasses import dataclass

from services.lib.store.cluster import SHARDING_KEY, check_cluster_name
from services.lib.store.retention import Retention
from storecast.catalog import COMMITMENT, EQUIPMENT_TYPES, FORECAST_TYPES, TARIFF, Kind, RecordType

ATTRIBUTE_COLUMN_TYPES = {
    Kind.FLOAT: "Nullable(Float64)",
    Kind.UNSIGNED_INT: "Nullable(UInt32)",
    Kind.STRING: "LowCardinality(Nullable(String))",
}
# A vector's periods, one array per attribute. The `values.` prefix makes them
# one Nested structure, so ClickHouse refuses arrays of unequal lengths and
# fills a later-added attribute with nulls of the right length.
PERIOD_COLUMN_TYPES = {
    Kind.FLOAT: "Array(Nullable(Float64))",
    Kind.UNSIGNED_INT: "Array(Nullable(UInt32))",
}
PERIOD_TIMESTAMPS = "values.timestamp"
# A granule of 128 vectors of a few hundred periods is a few hundred KB, so a
# point read of one vintage decompresses that, not the up to 10 MB of a default
# (8192 rows, index_granularity_bytes-capped) granule.
VECTOR_INDEX_GRANULARITY = 128
# A series' cells of one resolution are a few hundred rows among its finer cells: a read of 336 hour cells
# took 9-10 ms on chDB through 8192-row granules of five 13-element arrays, 5 ms through 1024-row ones. The
# primary index grows 8x with it: about 100 MB for 10,000 series' minute cells over a year (5 billion rows).
ROLLUP_INDEX_GRANULARITY = 1024
# ZSTD(1) compresses telemetry well at a fraction of Gorilla's insert cost.
VALUE_CODEC = "ZSTD(1)"
TIMESTAMP_CODEC = "DoubleDelta, ZSTD(1)"
KEY_CODEC = "LZ4"


def period_column(attribute_name: str) -> str:
    return f"values.{attribute_name}"


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    type: str
    codec: str = VALUE_CODEC

    def definition(self) -> str:
        return f"`{self.name}` {self.type} CODEC({self.codec})"


@dataclass(frozen=True, slots=True)
class Table:
    """A stored table, from which both its single-node and its cluster DDL are rendered."""

    name: str
    key_columns: tuple[Column, ...]
    value_columns: tuple[Column, ...]
    order_by: tuple[str, ...]
    # A MergeTree-family engine, without arguments: on a cluster it becomes Replicated<engine>.
    engine: str = "ReplacingMergeTree"
    # MergeTree settings (name, numeric value), in the order they are rendered.
    settings: tuple[tuple[str, int], ...] = ()
    # What STORECAST_RETENTION calls this table's data (category, type), and the
    # epoch-milliseconds column its rows expire by.
    retention_key: tuple[str, str | None] = ("", None)
    expires_by: str = "timestamp"
    # False: inserts are never fsynced, whatever STORECAST_FSYNC says, on a single node, where
    # the table holds what can be rebuilt from synced tables after a power loss (services/lib/reads/rollup.py).
    synced: bool = True
    # True: rows are deleted as patch parts (lightweight updates), visible at once and as cheap as a
    # small insert; a lightweight DELETE is otherwise a mutation, here 0.4-1 s each (rollup_pending).
    patched_deletes: bool = False

    @property
    def columns(self) -> tuple[Column, ...]:
        return self.key_columns + self.value_columns

    def ddl(
        self, database: str, cluster: str | None = None, retention: Retention | None = None, fsync: bool | None = None
    ) -> list[str]:
        """CREATE the table, then ADD any column a newer catalog declares, set its TTL from the
        retention and, unless `fsync` is None, whether an insert is synced to disk before it
        returns; on a ClickHouse cluster, the replicated and Distributed pair instead."""
        ttl = self._ttl(retention)
        if cluster is not None:
            statements = self._cluster_ddl(database, check_cluster_name(cluster), ttl)
            stored = f"{database}.{self.name}_local ON CLUSTER '{cluster}'"
        else:
            stored = f"{database}.{self.name}"
            statements = [self._create(stored, self._merge_tree(self.engine, ttl))]
            statements += [self._add_column(stored, column) for column in self.value_columns]
            statements += [self._modify_ttl(stored, ttl)] if ttl else []
        if self.patched_deletes:
            # Tables created before the setting get it too (rows already stored included).
            patching = ", ".join(f"{name} = {value}" for name, value in self._patch_settings())
            statements.append(f"ALTER TABLE {stored} MODIFY SETTING {patching}")
        if fsync is None:
            return statements
        return [*statements, self._durability(stored, fsync and (self.synced or cluster is not None))]

    def _patch_settings(self) -> tuple[tuple[str, int], ...]:
        return (("enable_block_number_column", 1), ("enable_block_offset_column", 1)) if self.patched_deletes else ()

    @staticmethod
    def _durability(table: str, fsync: bool) -> str:
        """An insert's files and its part directory fsynced before the insert returns (MergeTree
        defaults to neither: an acknowledged part could live in the page cache only)."""
        value = int(fsync)
        return f"ALTER TABLE {table} MODIFY SETTING fsync_after_insert = {value}, fsync_part_directory = {value}"

    def _ttl(self, retention: Retention | None) -> str | None:
        """The TTL clause of the retention's days for this table, if it has any."""
        days = retention.days_of(*self.retention_key) if retention is not None else None
        if days is None:
            return None
        # DateTime ends in 2106; later timestamps (allowed up to 2200) are clamped there, never expiring early.
        return f"toDateTime(least(intDiv(`{self.expires_by}`, 1000), 4294967295)) + INTERVAL {days} DAY DELETE"

    @staticmethod
    def _modify_ttl(table: str, ttl: str) -> str:
        # The new TTL applies as parts merge, not by rewriting every part at start-up.
        return f"ALTER TABLE {table} MODIFY TTL {ttl} SETTINGS materialize_ttl_after_modify = 0"

    def _cluster_ddl(self, database: str, cluster: str, ttl: str | None) -> list[str]:
        """A replicated `<name>_local` table on every host, and a Distributed table under
        the single-node name, so the services use the same table names in either mode;
        each column a newer catalog declares is added to both."""
        if not self.engine.endswith("MergeTree"):
            raise ValueError(f"no cluster form for the {self.engine} engine of {self.name}")
        if "site_id" not in (column.name for column in self.key_columns):
            raise ValueError(f"{self.name} has no site_id to shard by")
        on_cluster = f" ON CLUSTER '{cluster}'"
        local = f"{self.name}_local"
        local_table, distributed_table = f"{database}.{local}{on_cluster}", f"{database}.{self.name}{on_cluster}"
        # {shard} and {replica} are each host's macros: one replication path per shard.
        replicated = f"Replicated{self.engine}('/clickhouse/tables/{{shard}}/{database}/{local}', '{{replica}}')"
        statements = [
            self._create(local_table, self._merge_tree(replicated, ttl)),
            self._create(distributed_table, f"Distributed('{cluster}', '{database}', '{local}', {SHARDING_KEY})"),
        ]
        for column in self.value_columns:
            statements += [self._add_column(local_table, column), self._add_column(distributed_table, column)]
        return statements + ([self._modify_ttl(local_table, ttl)] if ttl else [])

    def _create(self, table: str, engine: str) -> str:
        columns = ",\n  ".join(column.definition() for column in self.columns)
        return f"CREATE TABLE IF NOT EXISTS {table} (\n  {columns}\n) ENGINE = {engine}"

    def _merge_tree(self, engine: str, ttl: str | None = None) -> str:
        """The engine clause of the table that stores the rows: the engine, its sort key, TTL and settings."""
        settings = ", ".join(f"{name} = {value}" for name, value in (*self.settings, *self._patch_settings()))
        clause = f"{engine} ORDER BY ({', '.join(self.order_by)})" + (f" TTL {ttl}" if ttl else "")
        return clause + (f" SETTINGS {settings}" if settings else "")

    @staticmethod
    def _add_column(table: str, column: Column) -> str:
        return f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {column.definition()}"


def database_ddl(database: str, cluster: str | None = None) -> str:
    on_cluster = f" ON CLUSTER '{check_cluster_name(cluster)}'" if cluster is not None else ""
    return f"CREATE DATABASE IF NOT EXISTS {database}{on_cluster}"


def record_table(name: str, record_type: RecordType, retention_key: tuple[str, str | None]) -> Table:
    """One row per record (or tariff period), keyed (site_id, id, timestamp)."""
    return Table(
        name=name,
        key_columns=(
            Column("site_id", "UInt32", KEY_CODEC),
            Column("id", "UInt32", KEY_CODEC),
            Column("timestamp", "Int64", TIMESTAMP_CODEC),
        ),
        value_columns=tuple(Column(a.name, ATTRIBUTE_COLUMN_TYPES[a.kind]) for a in record_type.attributes),
        order_by=("site_id", "id", "timestamp"),
        retention_key=retention_key,
    )


def vector_table(name: str, record_type: RecordType, retention_key: tuple[str, str | None]) -> Table:
    """One row per vector, keyed (site_id, id, creation_timestamp), periods in parallel arrays."""
    return Table(
        name=name,
        key_columns=(
            Column("site_id", "UInt32", KEY_CODEC),
            Column("id", "UInt32", KEY_CODEC),
            Column("creation_timestamp", "Int64", TIMESTAMP_CODEC),
        ),
        value_columns=(
            *(Column(a.name, ATTRIBUTE_COLUMN_TYPES[a.kind]) for a in record_type.vector_attributes),
            Column(PERIOD_TIMESTAMPS, "Array(Int64)", TIMESTAMP_CODEC),
            *(Column(period_column(a.name), PERIOD_COLUMN_TYPES[a.kind]) for a in record_type.attributes),
        ),
        order_by=("site_id", "id", "creation_timestamp"),
        settings=(("index_granularity", VECTOR_INDEX_GRANULARITY),),
        retention_key=retention_key,
        expires_by="creation_timestamp",
    )


# Rollups: per equipment table, each (site, id, bucket) cell of a few fixed resolutions
# holds, per attribute in catalog order, min, max, sum and count of non-null values
# (avg = sum / count) as four arrays, and the number of records, so a long-range
# aggregation reads cells, not records. Arrays, not a column per attribute and
# figure: the engine analyses every expression of every query, and 52 aggregate
# expressions per statement cost more than the work (services/lib/reads/rollup.py).
# An attribute a newer catalog appends is past the end of older cells' arrays,
# where the -ForEach aggregates read it as absent. `firsts` holds, per attribute,
# the value of the record at exactly the cell's start (NULL: none, or null), so
# that a window left-open at a cell boundary, PromQL's (t - range, t], is whole
# cells and two such values; cells computed before the column existed hold [].
ROLLUP_RESOLUTIONS_MS = (60_000, 3_600_000, 86_400_000)


def rollup_table(name: str, record_type: RecordType) -> Table:
    """The rollup cells of one equipment type, keyed (site_id, id, resolution, bucket);
    a recomputed cell replaces the old one as a replaced record does."""
    return Table(
        name=name,
        key_columns=(
            Column("site_id", "UInt32", KEY_CODEC),
            Column("id", "UInt32", KEY_CODEC),
            Column("resolution", "UInt32", KEY_CODEC),
            Column("bucket", "Int64", TIMESTAMP_CODEC),
        ),
        value_columns=(
            Column("records", "UInt32"),
            Column("mins", "Array(Nullable(Float64))"),
            Column("maxs", "Array(Nullable(Float64))"),
            Column("sums", "Array(Float64)"),
            Column("counts", "Array(UInt32)"),
            Column("firsts", "Array(Nullable(Float64))"),
        ),
        order_by=("site_id", "id", "resolution", "bucket"),
        settings=(("index_granularity", ROLLUP_INDEX_GRANULARITY),),
        retention_key=("rollup", record_type.name),
        expires_by="bucket",
        synced=False,
    )


# Spans of records inserted whose rollup cells are not yet recomputed (services/lib/reads/rollup.py):
# written after the records, deleted once their cells are; reads take cells only before them.
PENDING_TABLE = Table(
    name="rollup_pending",
    key_columns=(
        Column("tbl", "LowCardinality(String)", KEY_CODEC),
        Column("site_id", "UInt32", KEY_CODEC),
        Column("id", "UInt32", KEY_CODEC),
        Column("token", "UInt64", KEY_CODEC),
    ),
    value_columns=(Column("first", "Int64", TIMESTAMP_CODEC), Column("last", "Int64", TIMESTAMP_CODEC)),
    order_by=("tbl", "site_id", "id", "token"),
    engine="MergeTree",
    synced=False,
    patched_deletes=True,
)


PRODUCTION_TABLES: dict[str, Table] = {
    name: record_table(f"production_{t.table_suffix}", t, ("production", name)) for name, t in EQUIPMENT_TYPES.items()
}
ROLLUP_TABLES: dict[str, Table] = {name: rollup_table(f"rollup_{t.table_suffix}", t) for name, t in EQUIPMENT_TYPES.items()}
FORECAST_TABLES: dict[str, Table] = {
    name: vector_table(f"forecast_{t.table_suffix}", t, ("forecast", name)) for name, t in FORECAST_TYPES.items()
}
COMMITMENT_TABLE = vector_table("commitment", COMMITMENT, ("commitment", None))
TARIFF_TABLE = record_table("tariff", TARIFF, ("tariff", None))


def all_tables() -> list[Table]:
    return [
        *PRODUCTION_TABLES.values(),
        *ROLLUP_TABLES.values(),
        PENDING_TABLE,
        *FORECAST_TABLES.values(),
        COMMITMENT_TABLE,
        TARIFF_TABLE,
    ]
