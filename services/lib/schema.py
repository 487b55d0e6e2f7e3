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

from storecast.catalog import EQUIPMENT_TYPES, Kind, RecordType

ATTRIBUTE_COLUMN_TYPES = {
    Kind.FLOAT: "Nullable(Float64) CODEC(Gorilla, ZSTD(1))",
    Kind.UNSIGNED_INT: "Nullable(UInt32) CODEC(ZSTD(1))",
}


@dataclass(frozen=True, slots=True)
class Table:
    name: str
    # (column name, ClickHouse type with codec)
    key_columns: tuple[tuple[str, str], ...]
    value_columns: tuple[tuple[str, str], ...]
    order_by: tuple[str, ...]

    @property
    def columns(self) -> tuple[tuple[str, str], ...]:
        return self.key_columns + self.value_columns

    def ddl(self, database: str) -> list[str]:
        """CREATE the table, then ADD any column a newer catalog declares."""
        columns = ",\n  ".join(f"`{name}` {type_}" for name, type_ in self.columns)
        statements = [
            f"CREATE TABLE IF NOT EXISTS {database}.{self.name} (\n  {columns}\n)"
            f" ENGINE = ReplacingMergeTree ORDER BY ({', '.join(self.order_by)})"
        ]
        statements += [
            f"ALTER TABLE {database}.{self.name} ADD COLUMN IF NOT EXISTS `{name}` {type_}"
            for name, type_ in self.value_columns
        ]
        return statements


def production_table(equipment: RecordType) -> Table:
    return Table(
        name=f"production_{equipment.table_suffix}",
        key_columns=(
            ("site_id", "UInt32"),
            ("id", "UInt32"),
            ("timestamp", "Int64 CODEC(DoubleDelta, ZSTD(1))"),
        ),
        value_columns=tuple((a.name, ATTRIBUTE_COLUMN_TYPES[a.kind]) for a in equipment.attributes),
        order_by=("site_id", "id", "timestamp"),
    )


PRODUCTION_TABLES: dict[str, Table] = {name: production_table(t) for name, t in EQUIPMENT_TYPES.items()}


def all_tables() -> list[Table]:
    return list(PRODUCTION_TABLES.values())
