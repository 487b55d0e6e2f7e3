"""The benchmarks page's figures, rendered from the results `make bench` writes (an mkdocs hook).

docs/benchmarks.md holds MARKER where the tables go. They come from `bench-results.json` at the
repository root when a `make bench` left one there, else from the snapshot committed as
`docs/bench-results.json`, else the page says how to fill it: no figure is typed in by hand.
The structure is tests/bench/run.py's; the verdicts are report.py's, stored with the figures.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mkdocs.config.defaults import MkDocsConfig
    from mkdocs.structure.files import Files
    from mkdocs.structure.pages import Page

DOCS = Path(__file__).resolve().parent
REPO = DOCS.parent
# The latest local run first, then the committed snapshot.
SOURCES = (REPO / "bench-results.json", DOCS / "bench-results.json")
MARKER = "<!-- bench-results -->"
NO_RESULTS = "No benchmark results yet: run `make bench` to fill this page."
MIB = 1024 * 1024
# The result keys of the systems, in the columns' order, with their names.
SYSTEMS = {"storecast": "storecast", "influxdb": "InfluxDB", "victoria_metrics": "VictoriaMetrics", "engine": "chDB direct"}
# The request path's floor (tests/bench/stack_floor.py), measured on the recent shape's PUTs only.
RECENT_SYSTEMS = {**SYSTEMS, "stack_floor": "path's floor"}
PEERS = {"storecast": "storecast", "victoria_metrics": "VictoriaMetrics", "influxdb": "InfluxDB"}
OTHERS_SHARE = ("machine_cpu", "other_processes_share_of_machine")
# tests/bench/reads.py: the 15-min average as the writes end, and one rollup round later.
AFTER_WRITES = ("aggregate_as_writes_end", "right_after_writes", "median_ms")
AFTER_2S = ("aggregate_as_writes_end", "after_2s", "median_ms")

Results = dict[str, Any]


def _get(node: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return node


def _number(value: Any, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, (int, float)):
        return f"{value:,.{digits}f}"
    return str(value)


def _scaled(value: Any, scale: Callable[[float], float] | None) -> Any:
    return scale(value) if scale is not None and isinstance(value, (int, float)) else value


def _ratio(numerator: Any, denominator: Any) -> float | None:
    if isinstance(numerator, (int, float)) and isinstance(denominator, (int, float)) and denominator:
        return numerator / denominator
    return None


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _systems_present(results: Results, systems: dict[str, str]) -> dict[str, str]:
    return {key: name for key, name in systems.items() if key in results}


def _run(results: Results, source: str) -> str:
    config = results["config"]
    dataset = config["dataset"]
    versions = ", ".join(f"{name} {version}" for name, version in config.get("versions", {}).items())
    others = _get(results, *OTHERS_SHARE)
    lines = [
        f"From `{source}`: the run started {results.get('started_at', '(time not recorded)')}"
        + (" with `--quick` (a smoke run: small dataset, short phases)." if config.get("quick") else ".")
        + (" Fleet workload only (`--fleet-only`)." if config.get("fleet_only") else ""),
        "",
    ]
    if "storecast" in results:
        lines += [
            f"- Dataset: {dataset['records']:,} {dataset['equipment_type']} records ({dataset['equipments']} equipments"
            f" × {dataset['seconds']:,} s at 1 s), PUT in batches of {dataset['batch_records']:,} by one sequential client.",
            f"- GET figures: the median of {config['runs']} timed runs after {config.get('warmup_runs', 1)} warm-up.",
        ]
    lines.append(f"- Versions: {versions}." if versions else "- Versions: not recorded.")
    if "loadavg_at_start" in config:
        lines.append(f"- Load average at the start: {' '.join(config['loadavg_at_start'])}.")
    if others is not None:
        lines.append(f"- Other processes' share of the CPUs over the whole run: {100 * others:.0f}%.")
    return "\n".join(lines)


# The engine's own query of the same records as storecast's uncompressed raw reads (tests/bench/engine_limit.py).
ENGINE_RAW = {(3_600, "identity"): ("raw_3600", "median_ms"), (20_000, "identity"): ("raw", "median_ms")}


def _summary(results: Results) -> str | None:
    if "storecast" not in results:
        return None  # --fleet-only: no bulk phase ran
    systems = _systems_present(results, SYSTEMS)
    raw_records = results["config"]["dataset"]["seconds"]
    runs = results["config"]["runs"]
    # (label, path under a system, path under the engine when it has the figure, digits, scale)
    specs: list[tuple[str, tuple[str, ...], tuple[str, ...] | None, int, Callable[[float], float] | None]] = [
        ("ingest, records/s", ("ingest", "records_per_s"), ("insert_records_per_s",), 0, None),
        (f"GET 15 min avg, ms (median of {runs})", ("aggregate", "median_ms"), ("aggregate", "median_ms"), 1, None),
        (f"GET {raw_records:,} raw records, ms (median of {runs})", ("raw", "median_ms"), ("raw", "median_ms"), 1, None),
        ("GET 15 min avg right after the writes, ms", AFTER_WRITES, ("aggregate", "median_ms"), 1, None),
        ("GET 15 min avg 2 s after the writes, ms", AFTER_2S, ("aggregate", "median_ms"), 1, None),
        *(
            (
                f"GET {records:,} raw records, {coding}, {what}",
                ("raw_by_encoding", f"{records}_{coding}", key),
                ENGINE_RAW.get((records, coding)) if key == "median_ms" else None,
                1,
                scale,
            )
            for records in (3_600, 20_000)
            for coding in ("identity", "gzip")
            for what, key, scale in (("ms", "median_ms", None), ("KiB on the wire", "wire_bytes", lambda v: v / 1024))
        ),
        ("RSS after ingest, MiB (process tree)", ("rss_bytes_after_ingest",), ("rss_bytes_after_insert",), 0, lambda v: v / MIB),
        ("disk, MiB (du, settled)", ("disk", "allocated"), ("disk_after_optimize_final", "allocated"), 1, lambda v: v / MIB),
        ("disk, MiB (sum of file sizes)", ("disk", "apparent"), ("disk_after_optimize_final", "apparent"), 1, lambda v: v / MIB),
        ("other processes' CPU during the phase, %", OTHERS_SHARE, OTHERS_SHARE, 0, lambda v: 100 * v),
    ]
    rows = []
    for label, path, engine_path, digits, scale in specs:
        cells = []
        for key in systems:
            where = engine_path if key == "engine" else path
            value = None if where is None else _get(results[key], *where)
            cells.append(_number(_scaled(value, scale), digits))
        rows.append([label, *cells])
    table = _table(["figure", *systems.values()], rows)
    influx = _get(results, "storecast_influx", "ingest", "records_per_s")
    if influx is None:
        return table
    return table + (
        f"\n\nThe same records as 5,000-line bodies of InfluxDB line protocol on storecast's `/ext/influx/write`:"
        f" {_number(influx, 0)} records/s (the peers' column above is their own `/write` of those lines)."
    )


def _concurrency(results: Results) -> str | None:
    mixed = _get(results, "storecast", "concurrency")
    if mixed is None:
        return None
    rows = [
        [label, _number(mixed["put"].get(key), digits), _number(mixed["get"].get(key), digits)]
        for label, key, digits in (
            ("requests/s", "requests_per_s", 1),
            ("records/s", "records_per_s", 0),
            ("latency p50, ms", "p50_ms", 1),
            ("latency p99, ms", "p99_ms", 1),
            ("errors", "errors", 0),
        )
    ]
    return f"storecast, 4 writers + 4 readers for {mixed['seconds']:.0f} s:\n\n" + _table(["", "PUT", "GET"], rows)


def _phase_specs(many: str) -> list[tuple[str, tuple[str, ...], int]]:
    """The rows both fleet shapes have: (label, path under a system, digits)."""
    return [
        ("1 client, PUT p50, ms", ("single_put", "p50_ms"), 1),
        ("1 client, PUT p99, ms", ("single_put", "p99_ms"), 1),
        (f"{many}, PUT/s", ("put", "requests_per_s"), 0),
        (f"{many}, PUT p50, ms", ("put", "p50_ms"), 1),
        (f"{many}, PUT p99, ms", ("put", "p99_ms"), 1),
        (f"{many}, PUT errors", ("put", "errors"), 0),
        ("1 client, GET p50, ms", ("single_get", "p50_ms"), 1),
        ("1 client, GET p99, ms", ("single_get", "p99_ms"), 1),
        (f"{many}, GET/s", ("get", "requests_per_s"), 0),
        (f"{many}, GET p50, ms", ("get", "p50_ms"), 1),
        (f"{many}, GET p99, ms", ("get", "p99_ms"), 1),
        (f"{many}, GET errors", ("get", "errors"), 0),
        (f"server CPU s, {many} PUTs", ("put", "server_cpu_s"), 1),
        (f"load generator CPU s, {many} PUTs", ("put", "generator_cpu_s"), 1),
    ]


def _fleet_table(fleet: Results, systems: dict[str, str], specs: list[tuple[str, tuple[str, ...], int]]) -> str:
    rows = [[label, *(_number(_get(fleet[key], *path), digits) for key in systems)] for label, path, digits in specs]
    rows.append(
        [
            "other processes' CPU during the phase, %",
            *(_number(_scaled(_get(fleet[key], *OTHERS_SHARE), lambda v: 100 * v), 0) for key in systems),
        ]
    )
    return _table(["figure", *systems.values()], rows)


def _fleet(results: Results) -> str | None:
    fleet = results.get("fleet")
    if fleet is None:
        return None
    config = fleet["config"]
    many = f"{config['clients']} clients"
    specs = _phase_specs(many) + [
        (f"engine inserts/s, {many} PUTs", ("put", "engine_inserts_per_s"), 1),
        ("active parts after the PUTs", ("put", "active_parts_after"), 0),
        ("active parts, most seen", ("put", "active_parts_max"), 0),
        ("acknowledged records read back", ("read_back", "acknowledged"), 0),
        ("acknowledged records lost", ("read_back", "lost"), 0),
    ]
    intro = (
        f"1-record requests, {config['seconds']:g} s per phase; {many} are threads in {config['processes']} processes;"
        " records a day old written, seeded records three days old read;"
        " the chDB column is storecast's point-read SQL straight on the engine."
    )
    return intro + "\n\n" + _fleet_table(fleet, _systems_present(fleet, SYSTEMS), specs)


def _fleet_recent(results: Results) -> str | None:
    recent = results.get("fleet_recent")
    if recent is None:
        return None
    config = recent["config"]
    many = f"{config['clients']} clients"
    specs = _phase_specs(many) + [
        (f"log flushes/s, {many} PUTs", ("put", "flushes_per_s"), 2),
        (f"records per flush, {many} PUTs", ("put", "records_per_flush"), 0),
        ("GETs answered from memory", ("hot_tier_reads", "memory"), 0),
        ("GETs answered from the store", ("hot_tier_reads", "store"), 0),
        ("acknowledged records read back", ("read_back", "acknowledged"), 0),
        ("acknowledged records lost", ("read_back", "lost"), 0),
    ]
    put = _get(recent, "storecast", "put") or {}
    intro = (
        f"1-record requests, {config['seconds']:g} s per phase; {many} are threads in {config['processes']} processes;"
        f" PUT timestamps {config.get('put_timestamps', 'within the last hour')}, and the GETs read records those"
        " PUTs wrote, which storecast answers from its hot tier. storecast's write-ahead log peaked at"
        f" {_number(_scaled(put.get('peak_wal_disk_bytes'), lambda v: v / MIB), 2)} MiB on disk during the"
        f" {many}' PUTs. The path's floor is storecast's own gateway and services parts with nothing to do"
        " (tests/bench/stack_floor.py: uvicorn with our TLS, one gRPC call to a servicer that answers at once):"
        " the most a request path built of them serves here."
    )
    parts = [intro, _fleet_table(recent, _systems_present(recent, RECENT_SYSTEMS), specs)]
    memory = recent.get("hot_tier_memory")
    if memory is not None:
        parts.append(
            f"Hot tier memory for 1,000 series × 1 h at 1 s × {memory['attributes']} attributes (measured on"
            f" {memory['series']:,} series): {_number(memory.get('per_1000_series_nbytes_mib'), 1)} MiB counted by the tier,"
            f" {_number(memory.get('per_1000_series_rss_mib'), 1)} MiB of RSS, against a budget"
            f" (`STORECAST_HOT_MAX_BYTES`) of {_number(_scaled(memory.get('max_bytes'), lambda v: v / MIB), 0)} MiB."
        )
    return "\n\n".join(parts)


def _range_keys(long: Results) -> list[str]:
    return sorted((key for key in long if key.endswith("d") and key[:-1].isdigit()), key=lambda key: int(key[:-1]))


def _long_ranges(results: Results) -> str | None:
    long = results.get("long_ranges")
    ranges = _range_keys(long) if long else []
    if not long or not ranges:
        return None
    systems = _systems_present(long[ranges[0]], PEERS)
    rows = []
    for key in ranges:
        records = long[key].get("records")
        for bucket in ("1h", "1d"):
            label = f"{key[:-1]} days ({_number(records, 0)} records), {bucket} buckets"
            rows.append([label, *(_number(_get(long[key], system, bucket, "median_ms"), 1) for system in systems)])
        if any(_get(long[key], system, "promql") for system in systems):
            label = f"{key[:-1]} days, PromQL `avg_over_time(…[1h])` at a 1 h step"
            rows.append([label, *(_number(_get(long[key], system, "promql", "median_ms"), 1) for system in systems)])
        if any(_get(long[key], system, "raw_last_hour") for system in systems):
            label = f"{key[:-1]} days, the last hour's raw records, uncompressed"
            rows.append([label, *(_number(_get(long[key], system, "raw_last_hour", "median_ms"), 1) for system in systems)])
    ingest = [
        [f"{key[:-1]} days", *(_number(_get(long[key], system, "ingest", "records_per_s"), 0) for system in systems)]
        for key in ranges
    ]
    return (
        "Average over the whole range of one meter-3p at 1 Hz, and its last hour's records, ms (median):\n\n"
        + _table(["range", *systems.values()], rows)
        + "\n\nIngest of those records, records/s:\n\n"
        + _table(["range", *systems.values()], ingest)
    )


def _upkeep(results: Results) -> str | None:
    upkeep = _get(results, "long_ranges", "upkeep")
    if upkeep is None:
        return None
    rows = []
    for key, shape in (("typed_100000", "typed 100,000-record batches"), ("json_5000", "5,000-record JSON PUTs")):
        on, off = _get(upkeep, "on", key, "records_per_s"), _get(upkeep, "off", key, "records_per_s")
        ratio = _ratio(on, off)
        done = _get(upkeep, "on", key, "upkeep_done_after_s")
        rows.append([shape, _number(on, 0), _number(off, 0), _number(ratio, 2) + "×", _number(done, 1)])
    header = ["bulk ingest", "rollups on, records/s", "rollups off, records/s", "on / off", "upkeep done after the last PUT, s"]
    return _table(header, rows)


def _vectors(results: Results) -> str | None:
    vectors = _get(results, "long_ranges", "vectors")
    if vectors is None:
        return None
    rows = []
    for key, label in (("latest", "latest vintage"), ("all_48", "all 48 vintages")):
        for bucket in ("1h", "1d"):
            case = vectors.get(f"{key}_{bucket}")
            if case is not None:
                rows.append([f"{label}, {bucket} avg", _number(case.get("median_ms"), 1), _number(case.get("vintages"), 0)])
    intro = (
        f"Forecast aggregation on raw periods: {_number(vectors.get('periods_per_vintage'), 0)} periods per vintage,"
        f" {_number(vectors.get('vintages'), 0)} vintages stored."
    )
    return intro + "\n\n" + _table(["read", "ms (median)", "vintages returned"], rows)


def _typed(results: Results) -> str | None:
    typed = results.get("typed")
    if typed is None:
        return None
    ingest = typed.get("ingest", {})
    sizes = sorted({int(key.split("_", 1)[1]) for key in ingest})
    rows = []
    for size in sizes:
        as_typed, as_json = _get(ingest, f"typed_{size}", "records_per_s"), _get(ingest, f"json_{size}", "records_per_s")
        ratio = _ratio(as_typed, as_json)
        rows.append([f"{size:,}", _number(as_typed, 0), _number(as_json, 0), _number(ratio, 2) + "×"])
    parts = ["Ingest over gRPC, records/s:\n\n" + _table(["batch", "typed RecordBatch", "v1 JSON", "typed / JSON"], rows)]
    stream = typed.get("stream")
    if stream is not None:
        parts.append(
            f"A stream of {_number(stream.get('records'), 0)} records in {_number(stream.get('batches'), 0)} batches:"
            f" {_number(stream.get('records_per_s'), 0)} records/s; server RSS"
            f" {_number(_scaled(stream.get('server_rss_before_bytes'), lambda v: v / MIB), 0)} MiB before,"
            f" {_number(_scaled(stream.get('server_peak_rss_bytes'), lambda v: v / MIB), 0)} MiB at its peak;"
            f" client peak {_number(_scaled(stream.get('client_peak_rss_bytes'), lambda v: v / MIB), 0)} MiB."
        )
    imported = typed.get("import")
    if imported is not None:
        parts.append(
            f"`storecast import` of a {_number(imported.get('records'), 0)}-record CSV"
            f" ({_number(_scaled(imported.get('file_bytes'), lambda v: v / MIB), 0)} MiB) over gRPC:"
            f" {_number(imported.get('records_per_s'), 0)} records/s."
        )
    return "\n\n".join(parts)


def _checks(results: Results) -> str | None:
    checks = results.get("checks")
    if not checks:
        return None
    rows = []
    for check in checks:
        measured = check.get("measured")
        shown = "–" if measured is None else (f"{measured:.3f}" if isinstance(measured, float) else str(measured))
        rows.append([check["name"], shown, check["target"], f"**{check['verdict']}**"])
    return _table(["check", "measured", "target", "verdict"], rows)


def _notes(results: Results) -> str | None:
    notes = results.get("notes")
    if not notes:
        return None
    return "\n".join(f"- **{key}**: {text}" for key, text in notes.items())


SECTIONS: tuple[tuple[str, Callable[[Results], str | None]], ...] = (
    ("Bulk ingest and reads", _summary),
    ("Writers and readers at once", _concurrency),
    ("Fleet traffic", _fleet),
    ("Fleet traffic, recent data", _fleet_recent),
    ("Long ranges", _long_ranges),
    ("Rollup upkeep against bulk ingest", _upkeep),
    ("Vectors", _vectors),
    ("Typed gRPC API", _typed),
    ("Verdicts", _checks),
    ("How each figure is taken", _notes),
)


def render(results: Results | None, source: str = "bench-results.json") -> str:
    """The page's generated part: every section the results hold, or how to get results."""
    if results is None:
        return NO_RESULTS
    parts = [_run(results, source)]
    for title, section in SECTIONS:
        body = section(results)
        if body is not None:
            parts.append(f"### {title}\n\n{body}")
    return "\n\n".join(parts)


def load(sources: Sequence[Path] = SOURCES) -> tuple[Results, Path] | None:
    """The first results file that exists, with its path."""
    for path in sources:
        if path.is_file():
            return json.loads(path.read_text()), path
    return None


# A figure quoted in a page's prose, from the same results as the tables:
# `{{ bench: fleet_recent.storecast.put.requests_per_s | 0 }}` (digits after `|`, 1 by default),
# a ratio of two, `{{ bench: a.b / c.d | 2 }}`, or one scaled, `{{ bench: a.b / c.d * 1000 | 2 }}`.
FIGURE = re.compile(r"\{\{\s*bench:\s*([\w.]+)(?:\s*/\s*([\w.]+))?(?:\s*\*\s*(\d+))?\s*(?:\|\s*(\d))?\s*\}\}")


def quote_figures(markdown: str, results: Results | None) -> str:
    """Each FIGURE in the page replaced by its value in the results ("–" when they do not hold it)."""

    def figure(match: re.Match[str]) -> str:
        value = None if results is None else _get(results, *match[1].split("."))
        if match[2] is not None:
            value = _ratio(value, None if results is None else _get(results, *match[2].split(".")))
        if match[3] is not None:
            value = _scaled(value, lambda v: v * int(match[3]))
        return _number(value, int(match[4] or 1))

    return FIGURE.sub(figure, markdown)


def fill(markdown: str, sources: Sequence[Path] = SOURCES) -> str:
    """The page with its generated part in place of MARKER and its quoted figures filled in."""
    if MARKER not in markdown and FIGURE.search(markdown) is None:
        return markdown
    found = load(sources)
    if found is None:
        return quote_figures(markdown.replace(MARKER, NO_RESULTS), None)
    results, path = found
    shown = path.relative_to(REPO).as_posix() if path.is_relative_to(REPO) else str(path)
    return quote_figures(markdown.replace(MARKER, render(results, shown)), results)


def on_page_markdown(markdown: str, /, *, page: Page, config: MkDocsConfig, files: Files) -> str:
    return fill(markdown)
