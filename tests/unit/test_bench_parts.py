"""tests/bench/parts.py: MergeTree part directories counted from a chDB file tree.

tests/bench is not a package and pytest does not collect it, so the module is
loaded from its file; it uses the standard library only.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"


def _load_parts() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_parts", BENCH / "parts.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


parts = _load_parts()
UUID = "08cdcd2d-5f28-4f07-ba21-bf89444eab83"
OTHER_UUID = "5f0e1a7e-0000-4000-8000-000000000001"


def make_store(root: Path, tables: dict[str, list[str]], names: dict[str, str] | None = None) -> Path:
    """A chDB-like tree: store/<3 hex>/<uuid>/<part dirs>, and metadata/<db>/<table>.sql naming the UUIDs."""
    for uuid, dirs in tables.items():
        table_dir = root / "store" / uuid[:3] / uuid
        for name in dirs:
            (table_dir / name).mkdir(parents=True)
            (table_dir / name / "checksums.txt").write_text("")
        (table_dir / "format_version.txt").write_text("1")
    for uuid, qualified in (names or {}).items():
        database, table = qualified.split(".")
        (root / "metadata" / database).mkdir(parents=True, exist_ok=True)
        (root / "metadata" / database / f"{table}.sql").write_text(f"ATTACH TABLE _ UUID '{uuid}'\n(\n    `a` UInt32\n)\n")
    return root


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("all_1_1_0", parts.Part("all", 1, 1, 0)),
        ("all_1_5_2", parts.Part("all", 1, 5, 2)),
        ("all_3_3_1_7", parts.Part("all", 3, 3, 1, 7)),
        ("202611-1_4_9_1", parts.Part("202611-1", 4, 9, 1)),
        ("tmp_insert_all_6_6_0", None),
        ("tmp_merge_all_1_6_3", None),
        ("delete_tmp_all_1_1_0", None),
        ("detached", None),
        ("format_version.txt", None),
        ("all_1_1", None),
    ],
)
def test_part_names(name: str, expected: object) -> None:
    assert parts.parse_part_name(name) == expected


def test_active_parts_leave_out_merged_and_mutated_ones() -> None:
    names = ["all_1_1_1", "all_2_2_1", "all_3_3_1", "all_1_3_2", "all_4_4_1", "all_4_4_1_5", "all_5_5_1", "other_6_6_1"]
    active = parts.active_parts(parts.parse_part_name(name) for name in names)
    assert sorted(active, key=lambda p: (p.partition, p.min_block)) == [
        parts.Part("all", 1, 3, 2),
        parts.Part("all", 4, 4, 1, 5),
        parts.Part("all", 5, 5, 1),
        parts.Part("other", 6, 6, 1),  # another partition's range is never covered
    ]
    assert sorted(parts.covered_part_names(names)) == ["all_1_1_1", "all_2_2_1", "all_3_3_1", "all_4_4_1"]


def test_sample_counts_inserts_and_active_parts_per_table(tmp_path: Path) -> None:
    store = make_store(
        tmp_path,
        {UUID: ["all_1_1_1", "all_2_2_1", "all_1_2_2", "tmp_insert_all_9_9_0", "detached"], OTHER_UUID: ["all_1_1_1"]},
        {UUID: "storecast.production_meter_3p"},
    )
    before = parts.sample_store(store)
    assert before.max_blocks == {"storecast.production_meter_3p": 2, f"store/{OTHER_UUID[:3]}/{OTHER_UUID}": 1}
    assert before.active_parts == {"storecast.production_meter_3p": 1, f"store/{OTHER_UUID[:3]}/{OTHER_UUID}": 1}
    assert before.total_active_parts == 2

    # Three more inserts, and a merge of blocks 1-4 whose old parts have been deleted already.
    table_dir = store / "store" / UUID[:3] / UUID
    for name in ("all_3_3_1", "all_4_4_1", "all_5_5_1", "all_1_4_3"):
        (table_dir / name).mkdir()
    for name in ("all_1_1_1", "all_2_2_1"):
        (table_dir / name / "checksums.txt").unlink()
        (table_dir / name).rmdir()
    after = parts.sample_store(store)
    assert after.inserts_since(before) == 3
    assert after.active_parts["storecast.production_meter_3p"] == 2  # all_1_4_3 and all_5_5_1


def test_an_empty_store_has_no_tables(tmp_path: Path) -> None:
    (tmp_path / "store").mkdir()
    sample = parts.sample_store(tmp_path)
    assert sample.max_blocks == {} and sample.total_active_parts == 0
    assert sample.inserts_since(sample) == 0
