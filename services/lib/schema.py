"""Table layouts, derived from the catalog, and their DDL.

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
and the latest vintage of an id is the last row of its key range. README.md,
"How vectors are stored", gives the reasons and the measurements.
"""

from __future__ import annotations

from dataclasses import dataclass

from services.lib.cluster import cluster_ddl
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
    name: str
    key_columns: tuple[Column, ...]
    value_columns: tuple[Column, ...]
    order_by: tuple[str, ...]
    index_granularity: int | None = None

    @property
    def columns(self) -> tuple[Column, ...]:
        return self.key_columns + self.value_columns

    def ddl(self, database: str, cluster: str | None = None) -> list[str]:
        """CREATE the table, then ADD any column a newer catalog declares;
        on a ClickHouse cluster, the replicated and Distributed pair instead."""
        if cluster is not None:
            return cluster_ddl(self, database, cluster)
        columns = ",\n  ".join(column.definition() for column in self.columns)
        settings = f" SETTINGS index_granularity = {self.index_granularity}" if self.index_granularity else ""
        statements = [
            f"CREATE TABLE IF NOT EXISTS {database}.{self.name} (\n  {columns}\n)"
            f" ENGINE = ReplacingMergeTree ORDER BY ({', '.join(self.order_by)}){settings}"
        ]
        statements += [
            f"ALTER TABLE {database}.{self.name} ADD COLUMN IF NOT EXISTS {column.definition()}" for column in self.value_columns
        ]
        return statements


def record_table(name: str, record_type: RecordType) -> Table:
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
    )


def vector_table(name: str, record_type: RecordType) -> Table:
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
        index_granularity=VECTOR_INDEX_GRANULARITY,
    )


PRODUCTION_TABLES: dict[str, Table] = {
    name: record_table(f"production_{t.table_suffix}", t) for name, t in EQUIPMENT_TYPES.items()
}
FORECAST_TABLES: dict[str, Table] = {name: vector_table(f"forecast_{t.table_suffix}", t) for name, t in FORECAST_TYPES.items()}
COMMITMENT_TABLE = vector_table("commitment", COMMITMENT)
TARIFF_TABLE = record_table("tariff", TARIFF)


def all_tables() -> list[Table]:
    return [*PRODUCTION_TABLES.values(), *FORECAST_TABLES.values(), COMMITMENT_TABLE, TARIFF_TABLE]
