"""docs/gen_bench.py: the benchmarks page rendered from results shaped as tests/bench/run.py writes them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from docs import gen_bench

MIB = 1024 * 1024


def results() -> dict[str, Any]:
    """A small run: storecast and the engine only (--skip-peers), one long range, no typed phase."""
    return {
        "config": {
            "quick": True,
            "runs": 5,
            "warmup_runs": 1,
            "dataset": {
                "equipment_type": "meter-3p",
                "site_id": 100,
                "equipments": 4,
                "seconds": 3600,
                "records": 14400,
                "values": 187200,
                "batch_records": 5000,
                "start_ms": 0,
                "end_ms": 3_600_000,
                "expected_buckets": 4,
                "query_equipment": 3,
            },
            "versions": {"python": "3.11.9", "chdb": "4.4.0", "clickhouse_connect": "1.12.0", "cpus": "2"},
            "loadavg_at_start": ["0.50", "0.40", "0.30"],
        },
        "started_at": "2026-12-03T08:00:00+0000",
        "engine": {
            "insert_records_per_s": 250000.0,
            "aggregate": {"median_ms": 20.25},
            "raw": {"median_ms": 30.5},
            "machine_cpu": {"other_processes_share_of_machine": 0.02},
        },
        "storecast": {
            "ingest": {"seconds": 0.14, "records_per_s": 102345.6, "requests": 3},
            "rss_bytes_after_ingest": 600 * 1024 * 1024,
            "disk": {"allocated": 5 * 1024 * 1024, "apparent": 4 * 1024 * 1024},
            "aggregate": {"median_ms": 47.123, "buckets": 4},
            "raw": {"median_ms": 128.25, "records": 3600},
            "concurrency": {
                "seconds": 5.0,
                "put": {"requests_per_s": 37.6, "records_per_s": 37600.0, "p50_ms": 90.0, "p99_ms": 210.0, "errors": 0},
                "get": {"requests_per_s": 46.9, "records_per_s": 46900.0, "p50_ms": 70.0, "p99_ms": 160.0, "errors": 0},
            },
            "machine_cpu": {"other_processes_share_of_machine": 0.05},
        },
        "fleet": {
            "config": {"clients": 16, "processes": 4, "seconds": 3.0},
            "storecast": {
                "single_put": {"p50_ms": 13.3, "p99_ms": 21.2},
                "put": {"requests_per_s": 360.0, "p50_ms": 43.0, "p99_ms": 130.0, "errors": 0, "active_parts_after": 4},
                "single_get": {"p50_ms": 24.2, "p99_ms": 29.9},
                "get": {"requests_per_s": 108.0, "p50_ms": 140.0, "p99_ms": 200.0, "errors": 0},
                "read_back": {"acknowledged": 1234, "lost": 0},
            },
            "engine": {"get": {"requests_per_s": 109.0}},
        },
        "long_ranges": {
            "2d": {
                "records": 172800,
                "storecast": {"ingest": {"records_per_s": 338543.0}, "1h": {"median_ms": 54.0}, "1d": {"median_ms": 51.0}},
            },
            "upkeep": {
                "on": {"typed_100000": {"records_per_s": 338543.0, "upkeep_done_after_s": 2.6}},
                "off": {"typed_100000": {"records_per_s": 419332.0}},
            },
        },
        "checks": [
            {"name": "ingest: storecast / engine insert", "measured": 0.409, "target": ">= 0.6", "verdict": "FAIL"},
            {"name": "storecast raw GET: records", "measured": 3600, "target": "= 3600", "verdict": "PASS"},
            {"name": "ingest: storecast / InfluxDB", "measured": None, "target": ">= 1.5", "verdict": "SKIP"},
        ],
        "notes": {"gets": "median of the timed runs after one warm-up run"},
    }


def table_rows(page: str, first_cell: str) -> list[list[str]]:
    """The cells of every markdown table row whose first cell is `first_cell`."""
    rows = [[cell.strip() for cell in line.strip("|").split("|")] for line in page.splitlines() if line.startswith("| ")]
    return [row for row in rows if row[0] == first_cell]


def test_figures_land_in_their_system_columns() -> None:
    page = gen_bench.render(results(), "docs/bench-results.json")
    assert "| figure | storecast | chDB direct |" in page  # no peer ran: no peer column
    assert table_rows(page, "ingest, records/s") == [["ingest, records/s", "102,346", "250,000"]]
    assert table_rows(page, "GET 15 min avg, ms (median of 5)") == [["GET 15 min avg, ms (median of 5)", "47.1", "20.2"]]
    assert table_rows(page, "GET 3,600 raw records, ms (median of 5)")[0][1:] == ["128.2", "30.5"]
    # The engine has no RSS of its own, and bytes are shown in MiB.
    assert table_rows(page, "RSS after ingest, MiB (process tree)") == [["RSS after ingest, MiB (process tree)", "600", "–"]]
    assert table_rows(page, "disk, MiB (du, settled)")[0][1] == "5.0"
    assert table_rows(page, "other processes' CPU during the phase, %")[0][1:] == ["5", "2"]


def test_every_phase_the_results_hold_has_its_section() -> None:
    page = gen_bench.render(results(), "bench-results.json")
    assert "From `bench-results.json`: the run started 2026-12-03T08:00:00+0000 with `--quick`" in page
    assert "14,400 meter-3p records (4 equipments × 3,600 s at 1 s)" in page
    assert table_rows(page, "requests/s") == [["requests/s", "37.6", "46.9"]]
    assert table_rows(page, "16 clients, PUT/s") == [["16 clients, PUT/s", "360", "–"]]
    assert table_rows(page, "16 clients, GET/s")[0][1:] == ["108", "109"]
    assert table_rows(page, "acknowledged records lost")[0][1] == "0"
    assert table_rows(page, "2 days (172,800 records), 1h buckets") == [["2 days (172,800 records), 1h buckets", "54.0"]]
    assert table_rows(page, "typed 100,000-record batches") == [
        ["typed 100,000-record batches", "338,543", "419,332", "0.81×", "2.6"]
    ]
    assert table_rows(page, "ingest: storecast / engine insert") == [
        ["ingest: storecast / engine insert", "0.409", ">= 0.6", "**FAIL**"]
    ]
    assert table_rows(page, "ingest: storecast / InfluxDB")[0][1] == "–"
    assert "- **gets**: median of the timed runs after one warm-up run" in page
    # Phases the run did not have get no section.
    assert "### Typed gRPC API" not in page and "### Vectors" not in page


def fleet_only_results() -> dict[str, Any]:
    """A --fleet-only run of the recent shape alone: no bulk phase, storecast beside VictoriaMetrics."""
    bulk = results()
    recent_phases = {
        "single_put": {"p50_ms": 2.5, "p99_ms": 9.0},
        "put": {"requests_per_s": 1200.0, "p50_ms": 12.0, "p99_ms": 28.0, "errors": 0},
        "single_get": {"p50_ms": 2.1, "p99_ms": 6.0},
        "get": {"requests_per_s": 1500.0, "p50_ms": 9.0, "p99_ms": 25.0, "errors": 0},
    }
    return {
        "config": bulk["config"] | {"fleet_only": True},
        "started_at": bulk["started_at"],
        "fleet_recent": {
            "config": {"clients": 16, "processes": 4, "seconds": 3.0, "put_timestamps": "from 50 min back, 1 ms apart"},
            "storecast": {
                **recent_phases,
                "put": recent_phases["put"]
                | {"flushes_per_s": 0.95, "records_per_flush": 1263.2, "peak_wal_disk_bytes": 3 * MIB},
                "hot_tier_reads": {"memory": 4800, "store": 0},
                "read_back": {"acknowledged": 3600, "lost": 0},
                "machine_cpu": {"other_processes_share_of_machine": 0.4},
            },
            "victoria_metrics": {**recent_phases, "put": recent_phases["put"] | {"requests_per_s": 2400.0}},
            "hot_tier_memory": {
                "series": 100,
                "attributes": 13,
                "per_1000_series_nbytes_mib": 384.5,
                "per_1000_series_rss_mib": 583.9,
                "max_bytes": 512 * MIB,
            },
        },
    }


def test_a_fleet_only_run_shows_the_recent_shape_and_no_bulk_section() -> None:
    page = gen_bench.render(fleet_only_results(), "bench-results.json")
    assert "Fleet workload only (`--fleet-only`)." in page and "- Dataset:" not in page
    assert "### Bulk ingest and reads" not in page and "### Fleet traffic\n" not in page
    assert "### Fleet traffic, recent data" in page
    assert "| figure | storecast | VictoriaMetrics |" in page
    assert table_rows(page, "16 clients, PUT/s") == [["16 clients, PUT/s", "1,200", "2,400"]]
    assert table_rows(page, "records per flush, 16 clients PUTs")[0][1] == "1,263"
    assert table_rows(page, "GETs answered from memory")[0][1:] == ["4,800", "–"]
    assert table_rows(page, "other processes' CPU during the phase, %")[0][1] == "40"
    assert "peaked at 3.00 MiB on disk" in page
    assert "384.5 MiB counted by the tier, 583.9 MiB of RSS" in page and "budget (`STORECAST_HOT_MAX_BYTES`) of 512 MiB" in page


def test_without_results_the_page_says_how_to_get_them(tmp_path: Path) -> None:
    page = gen_bench.fill(f"# Benchmarks\n\n{gen_bench.MARKER}\n", [tmp_path / "bench-results.json"])
    assert page == f"# Benchmarks\n\n{gen_bench.NO_RESULTS}\n"
    assert "run `make bench` to fill this page" in gen_bench.NO_RESULTS


def test_the_local_run_comes_before_the_snapshot(tmp_path: Path) -> None:
    local, snapshot = tmp_path / "bench-results.json", tmp_path / "docs-bench-results.json"
    snapshot.write_text(json.dumps(results() | {"started_at": "the snapshot's time"}))
    page = gen_bench.fill(gen_bench.MARKER, [local, snapshot])
    assert page.startswith(f"From `{snapshot}`: the run started the snapshot's time")
    local.write_text(json.dumps(results()))
    page = gen_bench.fill(gen_bench.MARKER, [local, snapshot])
    assert page.startswith(f"From `{local}`: the run started 2026-12-03T08:00:00+0000")


def test_pages_without_the_marker_are_left_alone(tmp_path: Path) -> None:
    (tmp_path / "bench-results.json").write_text(json.dumps(results()))
    assert gen_bench.fill("# Tests\n", [tmp_path / "bench-results.json"]) == "# Tests\n"


def test_figures_quoted_in_prose_come_from_the_results() -> None:
    run = {"fleet_recent": {"storecast": {"put": {"requests_per_s": 597.2, "server_cpu_s": 15.2, "requests": 5972}}}}
    run["fleet_recent"]["stack_floor"] = {"put": {"requests_per_s": 1355.3}}
    page = (
        "{{ bench: fleet_recent.storecast.put.requests_per_s | 0 }} PUT/s, "
        "{{bench:fleet_recent.storecast.put.requests_per_s / fleet_recent.stack_floor.put.requests_per_s|2}} of the floor, "
        "{{ bench: fleet_recent.storecast.put.server_cpu_s / fleet_recent.storecast.put.requests * 1000 | 2 }} ms, "
        "{{ bench: fleet_recent.influxdb.put.requests_per_s }}"
    )
    assert gen_bench.quote_figures(page, run) == "597 PUT/s, 0.44 of the floor, 2.55 ms, –"
    assert gen_bench.quote_figures(page, None) == "– PUT/s, – of the floor, – ms, –"


def test_every_quoted_figure_of_the_docs_is_in_the_committed_run() -> None:
    committed = json.loads((Path(gen_bench.__file__).parent / "bench-results.json").read_text())
    pages = sorted(Path(gen_bench.__file__).parent.rglob("*.md"))
    quoted = [(page.name, match[0]) for page in pages for match in gen_bench.FIGURE.finditer(page.read_text())]
    assert quoted
    for page, figure in quoted:
        assert "–" not in gen_bench.quote_figures(figure, committed), (page, figure)
