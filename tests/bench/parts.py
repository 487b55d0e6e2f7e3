"""MergeTree parts read from the file tree of a chDB directory.

A running storecast holds its chDB directory's lock, and chDB keeps no
system.query_log or system.part_log, so the bench counts what it needs from
the part directories themselves: `<partition>_<min_block>_<max_block>_<level>[_<mutation>]`.

- Every INSERT allocates the next block number of its table (a table-wide
  counter; merges reuse the numbers they cover), so the largest max_block of a
  table, sampled before and after a phase, counts the inserts in between.
- A part is active unless another part of its partition covers its block range
  at a higher level (a merge result), or the same range with a later mutation;
  the covered one only waits out old_parts_lifetime before it is deleted.

Standard library only, so tests/unit can import it without the bench's other modules.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

# Partition ids never hold '_' (ClickHouse escapes it), so the first '_' ends the partition.
_PART_NAME = re.compile(r"^(?P<partition>[^_]+)_(?P<min>\d+)_(?P<max>\d+)_(?P<level>\d+)(?:_(?P<mutation>\d+))?$")
# Inserts and merges write under tmp_*, removals go through delete_tmp_*; detached parts are not the table's.
_NOT_PARTS = ("tmp", "delete_tmp", "detached")
# An Atomic database's table directory is named by the table's UUID, given in its metadata file.
_METADATA_UUID = re.compile(r"UUID '(?P<uuid>[0-9a-f-]{36})'")


@dataclass(frozen=True, slots=True)
class Part:
    partition: str
    min_block: int
    max_block: int
    level: int
    mutation: int = 0

    def covers(self, other: Part) -> bool:
        """True when this part replaces `other` (a merge of it, or a later mutation of the same range)."""
        if self.partition != other.partition or not (self.min_block <= other.min_block and other.max_block <= self.max_block):
            return False
        if self.level != other.level:
            return self.level > other.level
        same_range = (self.min_block, self.max_block) == (other.min_block, other.max_block)
        return same_range and self.mutation > other.mutation


def parse_part_name(name: str) -> Part | None:
    """The part a directory name denotes, or None for anything else in a table directory."""
    if name.startswith(_NOT_PARTS):
        return None
    match = _PART_NAME.match(name)
    if match is None:
        return None
    return Part(match["partition"], int(match["min"]), int(match["max"]), int(match["level"]), int(match["mutation"] or 0))


def active_parts(parts: Iterable[Part]) -> list[Part]:
    """The parts no other part covers. Quadratic, which is fine for the few hundred a table holds."""
    candidates = list(parts)
    return [part for part in candidates if not any(other is not part and other.covers(part) for other in candidates)]


def covered_part_names(names: Iterable[str]) -> list[str]:
    """Directory names of parts another part covers: merged away, awaiting deletion."""
    parsed = [(name, part) for name in names if (part := parse_part_name(name)) is not None]
    active = {id(part) for part in active_parts(part for _, part in parsed)}
    return [name for name, part in parsed if id(part) not in active]


def table_part_dirs(store: Path) -> dict[Path, list[str]]:
    """Every directory under `store` holding part directories, with their names.

    Directories vanish mid-walk when a merge's old parts are deleted; os.walk
    skips what it can no longer list, and a part seen once more or less only
    moves an active-part count by one for one sample.
    """
    tables: dict[Path, list[str]] = {}
    for root, dirnames, _files in os.walk(store):
        names = [name for name in dirnames if parse_part_name(name) is not None]
        if names:
            tables[Path(root)] = names
            dirnames.clear()  # a table directory holds parts, not more tables
    return tables


def table_names(store: Path) -> dict[str, str]:
    """Table UUID -> `database.table`, from the Atomic databases' metadata files."""
    names: dict[str, str] = {}
    for metadata in store.glob("metadata/*/*.sql"):
        try:
            match = _METADATA_UUID.search(metadata.read_text(errors="replace"))
        except OSError:
            continue
        if match:
            names[match["uuid"]] = f"{metadata.parent.name}.{metadata.stem}"
    return names


@dataclass(frozen=True)
class StoreSample:
    """Per table (by name when known): the largest block number allocated so far, and the active parts."""

    max_blocks: dict[str, int]
    active_parts: dict[str, int]

    @property
    def total_active_parts(self) -> int:
        return sum(self.active_parts.values())

    def inserts_since(self, earlier: StoreSample) -> int:
        """Block numbers allocated since `earlier`, summed over tables: one per INSERT (per partition written)."""
        return sum(max(0, block - earlier.max_blocks.get(table, 0)) for table, block in self.max_blocks.items())


def sample_store(store: Path) -> StoreSample:
    names = table_names(store)
    max_blocks: dict[str, int] = {}
    active: dict[str, int] = {}
    for table_dir, part_names in table_part_dirs(store).items():
        table = names.get(table_dir.name, str(table_dir.relative_to(store)))
        parts = [part for name in part_names if (part := parse_part_name(name)) is not None]
        max_blocks[table] = max(part.max_block for part in parts)
        active[table] = len(active_parts(parts))
    return StoreSample(max_blocks, active)
