"""Table layouts, derived from the catalog, and their DDL.

Production: one table per equipment type, one Nullable column per attribute,
sorted by (site_id, id, timestamp) so a range of one equipment is one
contiguous scan. ReplacingMergeTree keeps the last inserted row of a key;
reads use FINAL so a replaced record is never seen twice. There is no
partitioning: each PUT is one INSERT of one block, hence one part, which is
what makes it atomic.
"""

from __future__ import annotations

from dataclasses import dataclass

from services.lib.cluster import cluster_ddl
from storecast.catalog import EQUIPMENT_TYPES, Kind, RecordType

ATTRIBUTE_COLUMN_TYPES = {Kind.FLOAT: "Nullable(Float64)", Kind.UNSIGNED_INT: "Nullable(UInt32)", Kind.STRING: "String"}
# ZSTD(1) compresses telemetry well at a fraction of Gorilla's insert cost.
VALUE_CODEC = "ZSTD(1)"


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

    @property
    def columns(self) -> tuple[Column, ...]:
        return self.key_columns + self.value_columns

    def ddl(self, database: str, cluster: str | None = None) -> list[str]:
        """CREATE the table, then ADD any column a newer catalog declares;
        on a ClickHouse cluster, the replicated and Distributed pair instead."""
        if cluster is not None:
            return cluster_ddl(self, database, cluster)
        columns = ",\n  ".join(column.definition() for column in self.columns)
        statements = [
            f"CREATE TABLE IF NOT EXISTS {database}.{self.name} (\n  {columns}\n)"
            f" ENGINE = ReplacingMergeTree ORDER BY ({', '.join(self.order_by)})"
        ]
        statements += [
            f"ALTER TABLE {database}.{self.name} ADD COLUMN IF NOT EXISTS {column.definition()}"
            for column in self.value_columns
        ]
        return statements


def production_table(equipment: RecordType) -> Table:
    return Table(
        name=f"production_{equipment.table_suffix}",
        key_columns=(
            Column("site_id", "UInt32", "LZ4"),
            Column("id", "UInt32", "LZ4"),
            Column("timestamp", "Int64", "DoubleDelta, ZSTD(1)"),
        ),
        value_columns=tuple(Column(a.name, ATTRIBUTE_COLUMN_TYPES[a.kind]) for a in equipment.attributes),
        order_by=("site_id", "id", "timestamp"),
    )


PRODUCTION_TABLES: dict[str, Table] = {name: production_table(t) for name, t in EQUIPMENT_TYPES.items()}


def all_tables() -> list[Table]:
    return list(PRODUCTION_TABLES.values())
