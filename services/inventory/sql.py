"""SQL that lists the sites with data stored, and every series of one site, each in one query.

Production and tariff tables are ReplacingMergeTree keyed (site_id, id,
timestamp), forecast and commitment tables keyed (site_id, id,
creation_timestamp): a record, period or vintage stored again is a second
row until a merge drops the first, so counts are taken over FINAL, which
merges the versions of each key as it reads (per shard on a cluster, where
every version of a key is on its site's shard).
"""

from __future__ import annotations

from dataclasses import dataclass

from services.lib.store.schema import PERIOD_TIMESTAMPS

# The order of SiteInventory.series: by category, then type name, then id.
CATEGORIES = ("production", "forecast", "commitment", "tariff")
SITE_FILTER = "site_id = {site_id:UInt32}"
AMONG_FILTER = "site_id IN {among:Array(UInt32)}"


@dataclass(frozen=True, slots=True)
class Source:
    """One table the inventory reads: what its rows are series of, and what of it is still kept."""

    table: str  # qualified
    category: str
    type_name: str  # "" for commitments and tariffs
    vectors: bool  # one row per vintage, its periods in arrays
    horizon_ms: int  # rows before it are past their retention and no longer read (0: all are kept)

    def where(self, *conditions: str) -> str:
        kept = [f"timestamp >= {self.horizon_ms}"] if self.horizon_ms else []
        return f" WHERE {' AND '.join([*conditions, *kept])}" if conditions or kept else ""


def _series_sql(source: Source) -> str:
    """A row per id of the site: rank, type, id, first and last timestamp, count, first and last vintage."""
    rank = CATEGORIES.index(source.category)
    head = f"SELECT {rank} AS rank, '{source.type_name}' AS type, id"
    if source.vectors:
        periods = f"`{PERIOD_TIMESTAMPS}`"
        figures = (
            f"min(arrayMin({periods})) AS first, max(arrayMax({periods})) AS last, count() AS n,"
            " toNullable(min(creation_timestamp)) AS first_created, toNullable(max(creation_timestamp)) AS last_created"
        )
    else:
        figures = (
            "min(timestamp) AS first, max(timestamp) AS last, count() AS n,"
            " CAST(NULL AS Nullable(Int64)) AS first_created, CAST(NULL AS Nullable(Int64)) AS last_created"
        )
    return f"{head}, {figures} FROM {source.table} FINAL{source.where(SITE_FILTER)} GROUP BY id"


def inventory_sql(sources: list[Source]) -> str:
    """Every series of the site {site_id}, in SiteInventory's order."""
    branches = "\nUNION ALL\n".join(_series_sql(source) for source in sources)
    return f"SELECT rank, type, id, first, last, n, first_created, last_created FROM ({branches}) ORDER BY rank, type, id"


def sites_sql(sources: list[Source], *, among: bool) -> str:
    """The sites with any row kept, ascending; with `among`, only those of {among}, which the
    primary key finds without reading any other site. No FINAL: any version of a row will do."""
    conditions = (AMONG_FILTER,) if among else ()
    branches = [f"SELECT DISTINCT site_id FROM {source.table}{source.where(*conditions)}" for source in sources]
    return f"SELECT DISTINCT site_id FROM ({' UNION ALL '.join(branches)}) ORDER BY site_id"
