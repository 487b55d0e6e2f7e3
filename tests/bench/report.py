"""The bench's verdicts and its one printed table."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

MIB = 1024 * 1024
_SHARE = ("machine_cpu", "other_processes_share_of_machine")


@dataclass(frozen=True)
class Check:
    name: str
    measured: float | None  # a ratio, or a count for correctness checks
    target: str
    verdict: str  # PASS, FAIL or SKIP

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def _ratio_check(name: str, numerator: float | None, denominator: float | None, op: str, bound: float) -> Check:
    if numerator is None or denominator is None or denominator == 0:
        return Check(name, None, f"{op} {bound:g}", "SKIP")
    ratio = numerator / denominator
    passed = ratio >= bound if op == ">=" else ratio <= bound
    return Check(name, round(ratio, 3), f"{op} {bound:g}", "PASS" if passed else "FAIL")


def _equal_check(name: str, measured: int | None, expected: int) -> Check:
    if measured is None:
        return Check(name, None, f"= {expected}", "SKIP")
    return Check(name, measured, f"= {expected}", "PASS" if measured == expected else "FAIL")


def _bound_check(name: str, measured: float | None, op: str, bound: float) -> Check:
    """An absolute target on one figure (a rate, a latency, a count)."""
    if measured is None:
        return Check(name, None, f"{op} {bound:g}", "SKIP")
    passed = measured >= bound if op == ">=" else measured <= bound
    shown = measured if isinstance(measured, int) else round(float(measured), 3)
    return Check(name, shown, f"{op} {bound:g}", "PASS" if passed else "FAIL")


def _get(results: dict[str, Any], *path: str) -> Any:
    node: Any = results
    for key in path:
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return node


def checks(results: dict[str, Any]) -> list[Check]:
    return (
        (bulk_checks(results) if "storecast" in results else [])
        + (fleet_checks(results["fleet"]) if "fleet" in results else [])
        + (recent_checks(results["fleet_recent"]) if "fleet_recent" in results else [])
        + (typed_checks(results["typed"]) if "typed" in results else [])
        + (influx_write_checks(results) if "storecast_influx" in results else [])
        + (large_put_checks(results["storecast"]["large_puts"]) if "large_puts" in results.get("storecast", {}) else [])
        + (long_range_checks(results["long_ranges"]) if "long_ranges" in results else [])
        + (upkeep_checks(results["long_ranges"]) if "upkeep" in results.get("long_ranges", {}) else [])
    )


def bulk_checks(results: dict[str, Any]) -> list[Check]:
    """The bulk phases' verdicts: storecast against the peers and the engine on one dataset."""
    sc_ingest = _get(results, "storecast", "ingest", "records_per_s")
    sc_agg = _get(results, "storecast", "aggregate", "median_ms")
    sc_raw = _get(results, "storecast", "raw", "median_ms")
    dataset = results["config"]["dataset"]
    concurrency = _get(results, "storecast", "concurrency")
    return [
        _ratio_check("ingest: storecast / InfluxDB", sc_ingest, _get(results, "influxdb", "ingest", "records_per_s"), ">=", 1.5),
        _ratio_check(
            "ingest: storecast / VictoriaMetrics",
            sc_ingest,
            _get(results, "victoria_metrics", "ingest", "records_per_s"),
            ">=",
            1.0,
        ),
        # Issue 22's target (an earlier issue's was 0.6).
        _ratio_check("ingest: storecast / engine insert", sc_ingest, _get(results, "engine", "insert_records_per_s"), ">=", 0.9),
        _ratio_check(
            "15m avg GET time: storecast / InfluxDB", sc_agg, _get(results, "influxdb", "aggregate", "median_ms"), "<=", 1.0
        ),
        _ratio_check(
            "15m avg GET time: storecast / engine query", sc_agg, _get(results, "engine", "aggregate", "median_ms"), "<=", 2.0
        ),
        _ratio_check("raw GET time: storecast / InfluxDB", sc_raw, _get(results, "influxdb", "raw", "median_ms"), "<=", 0.5),
        _equal_check("storecast raw GET: records", _get(results, "storecast", "raw", "records"), dataset["seconds"]),
        _equal_check(
            "storecast 15m avg GET: buckets", _get(results, "storecast", "aggregate", "buckets"), dataset["expected_buckets"]
        ),
        _equal_check("storecast values: spot-check mismatches", _get(results, "storecast", "value_mismatches"), 0),
        _equal_check("InfluxDB raw GET: records", _get(results, "influxdb", "raw", "records"), dataset["seconds"]),
        _equal_check(
            "InfluxDB 15m avg GET: buckets", _get(results, "influxdb", "aggregate", "buckets"), dataset["expected_buckets"]
        ),
        _equal_check(
            "VictoriaMetrics export: samples per series",
            _get(results, "victoria_metrics", "raw", "records"),
            dataset["seconds"],
        ),
        _equal_check(
            "VictoriaMetrics 15m avg: points per series",
            _get(results, "victoria_metrics", "aggregate", "buckets"),
            dataset["expected_buckets"],
        ),
        *aggregate_and_raw_read_checks(results),
        _equal_check("storecast exit code after SIGTERM", _get(results, "storecast", "exit_code"), 0),
        _equal_check(
            "concurrency: errors",
            None if concurrency is None else concurrency["put"]["errors"] + concurrency["get"]["errors"],
            0,
        ),
    ]


AFTER_WRITES = ("aggregate_as_writes_end", "right_after_writes", "median_ms")
AFTER_2S = ("aggregate_as_writes_end", "after_2s", "median_ms")


def aggregate_and_raw_read_checks(results: dict[str, Any]) -> list[Check]:
    """Issue 22's targets: the 15-min average as the writes end, raw reads and their gzip wire size, memory after ingest."""
    right_after = _get(results, "storecast", *AFTER_WRITES)
    raw_20k = ("raw_by_encoding", "20000_identity")
    return [
        _ratio_check(
            "RSS after ingest: storecast / InfluxDB",
            _get(results, "storecast", "rss_bytes_after_ingest"),
            _get(results, "influxdb", "rss_bytes_after_ingest"),
            "<=",
            2.0,
        ),
        _ratio_check(
            "15m avg after writes: storecast / InfluxDB",
            right_after,
            _get(results, "influxdb", *AFTER_WRITES),
            "<=",
            1.0,
        ),
        _ratio_check(
            "15m avg after writes: storecast / engine",
            right_after,
            _get(results, "engine", "aggregate", "median_ms"),
            "<=",
            1.0,
        ),
        _ratio_check(
            "15m avg 2 s later: storecast / VM",
            _get(results, "storecast", *AFTER_2S),
            _get(results, "victoria_metrics", *AFTER_2S),
            "<=",
            3.0,
        ),
        _ratio_check(
            "raw 20,000 GET: storecast / VM",
            _get(results, "storecast", *raw_20k, "median_ms"),
            _get(results, "victoria_metrics", *raw_20k, "median_ms"),
            "<=",
            1.2,
        ),
        _ratio_check(
            "raw 20,000 wire: storecast gzip / plain",
            _get(results, "storecast", "raw_by_encoding", "20000_gzip", "wire_bytes"),
            _get(results, "storecast", *raw_20k, "wire_bytes"),
            "<=",
            0.2,
        ),
    ]


def large_put_checks(large: dict[str, Any]) -> list[Check]:
    """Issue 22's memory target under concurrent large PUTs (tests/bench/large_puts.py)."""
    return [
        _bound_check("large PUTs: peak RSS growth / admitted bytes", large["growth_per_admitted_byte"], "<=", 3.0),
        _equal_check("large PUTs: admitted ones stored whole", large["admitted_stored_whole"], large["admitted"]),
        _equal_check("large PUTs: answers other than 201 or 503", len(large["other_statuses"]), 0),
    ]


# The long-range targets: at the shorter range, at most half VictoriaMetrics' time;
# at the longer, at most twice storecast's own time at the shorter.
LONG_VS_VICTORIA = 0.5
LONG_GROWTH = 2.0
RAW_LAST_HOUR_VS_VICTORIA = 1.5
LAST_HOUR_RECORDS = 3_600


def long_range_checks(long: dict[str, Any]) -> list[Check]:
    ranges = sorted((key for key in long if key.endswith("d") and key[:-1].isdigit()), key=lambda k: int(k[:-1]))
    if not ranges:
        return []
    short, longest = ranges[0], ranges[-1]
    checks = []
    for label in ("1h", "1d"):
        checks.append(
            _ratio_check(
                f"long range {short}, {label} avg: storecast / VictoriaMetrics",
                _get(long, short, "storecast", label, "median_ms"),
                _get(long, short, "victoria_metrics", label, "median_ms"),
                "<=",
                LONG_VS_VICTORIA,
            )
        )
        if longest != short:
            checks.append(
                _ratio_check(
                    f"long range {longest} / {short}, {label} avg time",
                    _get(long, longest, "storecast", label, "median_ms"),
                    _get(long, short, "storecast", label, "median_ms"),
                    "<=",
                    LONG_GROWTH,
                )
            )
        for key in ranges:
            stored = _get(long, key, "storecast", label) or {}
            checks.append(
                _equal_check(f"long range {key}, {label} avg: buckets", stored.get("buckets"), stored.get("expected_buckets", 0))
            )
    # Issue 20: the Grafana panel's PromQL over the shortest range (14 days in `make bench`), 1 h step.
    checks.append(
        _ratio_check(
            f"PromQL {short}, 1 h step: storecast / VictoriaMetrics",
            _get(long, short, "storecast", "promql", "median_ms"),
            _get(long, short, "victoria_metrics", "promql", "median_ms"),
            "<=",
            1.0,
        )
    )
    theirs = _get(long, short, "victoria_metrics", "promql", "points")
    if theirs is not None:
        mine = _get(long, short, "storecast", "promql", "points")
        checks.append(_equal_check(f"PromQL {short}, 1 h step: points, storecast = VictoriaMetrics", mine, theirs))
    # Issue 22: the last hour's raw records at the end of the shortest range cost what they return.
    checks.append(
        _ratio_check(
            f"1 h raw at the end of {short}: storecast / VictoriaMetrics",
            _get(long, short, "storecast", "raw_last_hour", "median_ms"),
            _get(long, short, "victoria_metrics", "raw_last_hour", "median_ms"),
            "<=",
            RAW_LAST_HOUR_VS_VICTORIA,
        )
    )
    hour = _get(long, short, "storecast", "raw_last_hour", "records")
    if hour is not None:
        checks.append(_equal_check(f"1 h raw at the end of {short}: records", hour, LAST_HOUR_RECORDS))
    return checks


# Bulk ingest while the rollup maintainer works, against rollups off in the same run; and the
# maintainer keeps up: once the PUTs are done, what is left takes at most a few of its rounds.
UPKEEP_INGEST = 0.8
UPKEEP_LAG_S = 5.0


def upkeep_checks(long: dict[str, Any]) -> list[Check]:
    checks = []
    for key, shape in (("typed_100000", "typed 100,000-record batches"), ("json_5000", "5,000-record JSON PUTs")):
        checks.append(
            _ratio_check(
                f"bulk ingest, rollup upkeep running / rollups off, {shape}",
                _get(long, "upkeep", "on", key, "records_per_s"),
                _get(long, "upkeep", "off", key, "records_per_s"),
                ">=",
                UPKEEP_INGEST,
            )
        )
        lag = _get(long, "upkeep", "on", key, "upkeep_done_after_s")
        checks.append(_bound_check(f"rollup upkeep done after the last PUT, {shape}, s", lag, "<=", UPKEEP_LAG_S))
    return checks


# Issue 20: line protocol into storecast as fast as InfluxDB takes it, and not far below the typed gRPC API.
INFLUX_WRITE_VS_INFLUXDB = 1.0
INFLUX_WRITE_VS_TYPED = 0.8


def influx_write_checks(results: dict[str, Any]) -> list[Check]:
    """storecast's /ext/influx/write of the bulk bodies against InfluxDB's /write of the same lines and
    storecast's typed gRPC ingest in 5,000-record batches, all from the same run; and the most the
    gateway's parse alone leaves of the latter ratio: a body costs its parse, then what its typed batch costs."""
    mine = _get(results, "storecast_influx", "ingest", "records_per_s")
    typed = _get(results, "typed", "ingest", "typed_5000", "records_per_s")
    parsed = _get(results, "storecast_influx", "parse_alone", "records_per_s")
    # typed / (typed + parse) in times is parse / (parse + typed) in rates.
    ceiling = None if typed is None or parsed is None else parsed / (parsed + typed)
    return [
        _ratio_check(
            "line protocol: storecast / InfluxDB /write",
            mine,
            _get(results, "influxdb", "ingest", "records_per_s"),
            ">=",
            INFLUX_WRITE_VS_INFLUXDB,
        ),
        _ratio_check("line protocol / typed gRPC, 5,000 records", mine, typed, ">=", INFLUX_WRITE_VS_TYPED),
        _bound_check("line protocol / typed gRPC: the most the gateway's parse leaves", ceiling, ">=", INFLUX_WRITE_VS_TYPED),
    ]


def typed_checks(typed: dict[str, Any]) -> list[Check]:
    """The typed gRPC API against the v1 JSON one over the same gRPC, same batches; the stream's completeness."""
    checks = [
        _ratio_check(
            f"typed gRPC ingest / JSON over gRPC, {size:,}-record batches",
            _get(typed, "ingest", f"typed_{size}", "records_per_s"),
            _get(typed, "ingest", f"json_{size}", "records_per_s"),
            ">=",
            1.0,
        )
        for size in (5_000, 100_000)
    ]
    stream = typed.get("stream") or {}
    return checks + [
        _equal_check("typed stream: records missing", None if not stream else typed["records"] - stream["records"], 0)
    ]


# The fleet workload's targets (the numbers). "Active parts bounded" is read as at most
# FLEET_ACTIVE_PARTS_BOUND: far below parts_to_delay_insert (1,000 per partition), where ClickHouse
# starts throttling inserts, while merges that keep up hold a table to a few dozen.
FLEET_PUT_PER_S = 1_500
FLEET_PUT_P99_MS = 50
FLEET_ENGINE_INSERTS_PER_S = 20
FLEET_SINGLE_PUT_P50_MS = 8
FLEET_GET_PER_S = 150
FLEET_GET_VS_ENGINE = 0.75
FLEET_SINGLE_GET_P50_MS = 15
FLEET_ACTIVE_PARTS_BOUND = 100


def fleet_checks(fleet: dict[str, Any]) -> list[Check]:
    """PASS/FAIL of storecast's fleet figures; the engine ratio uses the point-read limit measured in the same run."""
    clients = fleet["config"]["clients"]
    put = _get(fleet, "storecast", "put") or {}
    get = _get(fleet, "storecast", "get") or {}
    errors = [_get(fleet, "storecast", phase, "errors") for phase in ("single_put", "put", "single_get", "get")]
    return [
        _bound_check(f"fleet: {clients} clients x 1-record PUT/s", put.get("requests_per_s"), ">=", FLEET_PUT_PER_S),
        _bound_check(f"fleet: {clients} clients PUT p99, ms", put.get("p99_ms"), "<=", FLEET_PUT_P99_MS),
        _equal_check("fleet: acknowledged records lost", _get(fleet, "storecast", "read_back", "lost"), 0),
        _bound_check(
            "fleet: engine inserts/s during the PUTs", put.get("engine_inserts_per_s"), "<=", FLEET_ENGINE_INSERTS_PER_S
        ),
        _bound_check("fleet: active parts (max during/after PUTs)", put.get("active_parts_max"), "<=", FLEET_ACTIVE_PARTS_BOUND),
        _bound_check(
            "fleet: 1 client, 1-record PUT p50, ms",
            _get(fleet, "storecast", "single_put", "p50_ms"),
            "<=",
            FLEET_SINGLE_PUT_P50_MS,
        ),
        _bound_check(f"fleet: {clients} clients x 1-record GET/s", get.get("requests_per_s"), ">=", FLEET_GET_PER_S),
        _ratio_check(
            "fleet: GET/s storecast / engine point reads",
            get.get("requests_per_s"),
            _get(fleet, "engine", "get", "requests_per_s"),
            ">=",
            FLEET_GET_VS_ENGINE,
        ),
        _bound_check(
            "fleet: 1 client, 1-record GET p50, ms",
            _get(fleet, "storecast", "single_get", "p50_ms"),
            "<=",
            FLEET_SINGLE_GET_P50_MS,
        ),
        _equal_check("fleet: storecast errors, all phases", None if None in errors else sum(errors), 0),
    ]


# The recent-data shape's targets (issue 19): 1-record requests on records of the last hour,
# which storecast acknowledges from its write-ahead log and answers from its hot tier.
RECENT_PUT_PER_S = 1_000
RECENT_PUT_VS_VICTORIA = 0.5
RECENT_PUT_P99_MS = 30
RECENT_SINGLE_PUT_P50_MS = 3
RECENT_GET_PER_S = 1_000
RECENT_SINGLE_GET_P50_MS = 3


def recent_checks(recent: dict[str, Any]) -> list[Check]:
    """PASS/FAIL of storecast's recent-shape figures, and the hot tier's memory against its budget."""
    clients = recent["config"]["clients"]
    put = _get(recent, "storecast", "put") or {}
    get = _get(recent, "storecast", "get") or {}
    errors = [_get(recent, "storecast", phase, "errors") for phase in ("single_put", "put", "single_get", "get")]
    memory = recent.get("hot_tier_memory") or {}
    budget = memory.get("max_bytes")
    return [
        _bound_check(f"recent: {clients} clients x 1-record PUT/s", put.get("requests_per_s"), ">=", RECENT_PUT_PER_S),
        _ratio_check(
            "recent: PUT/s storecast / VictoriaMetrics",
            put.get("requests_per_s"),
            _get(recent, "victoria_metrics", "put", "requests_per_s"),
            ">=",
            RECENT_PUT_VS_VICTORIA,
        ),
        _bound_check(f"recent: {clients} clients PUT p99, ms", put.get("p99_ms"), "<=", RECENT_PUT_P99_MS),
        _bound_check(
            "recent: 1 client, 1-record PUT p50, ms",
            _get(recent, "storecast", "single_put", "p50_ms"),
            "<=",
            RECENT_SINGLE_PUT_P50_MS,
        ),
        _bound_check(f"recent: {clients} clients x 1-record GET/s", get.get("requests_per_s"), ">=", RECENT_GET_PER_S),
        _bound_check(
            "recent: 1 client, 1-record GET p50, ms",
            _get(recent, "storecast", "single_get", "p50_ms"),
            "<=",
            RECENT_SINGLE_GET_P50_MS,
        ),
        _bound_check(
            "recent: GETs answered from memory, share", _get(recent, "storecast", "hot_tier_reads", "memory_share"), ">=", 1.0
        ),
        _equal_check("recent: acknowledged records lost", _get(recent, "storecast", "read_back", "lost"), 0),
        _equal_check("recent: storecast errors, all phases", None if None in errors else sum(errors), 0),
        *(
            _bound_check(f"hot tier, 1,000 series x 1 h: {label}, MiB", memory.get(key), "<=", budget / MIB)
            if budget
            else Check(f"hot tier, 1,000 series x 1 h: {label}, MiB", None, "<= budget", "SKIP")
            for label, key in (("counted", "per_1000_series_nbytes_mib"), ("RSS", "per_1000_series_rss_mib"))
        ),
    ]


def _cell(value: Any, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, (int, float)):
        return f"{value:,.{digits}f}"
    return str(value)


def _mib(value: Any) -> Any:
    return None if value is None else value / MIB


def _kib(value: Any) -> Any:
    return None if value is None else value / 1024


def _raw_reads(results: dict[str, Any]) -> list[tuple[str, str]]:
    """(key, label) of each raw read by length and encoding that storecast's phase measured."""
    keys = _get(results, "storecast", "raw_by_encoding") or {}
    return [(key, f"{int(key.split('_')[0]):,} raw, {key.split('_')[1]}") for key in keys]


_WIDTH = 44 + 17 * 4


def table(results: dict[str, Any], verdicts: list[Check]) -> str:
    """Every section that ran (bulk, fleet shapes), then the verdicts."""
    sections = [
        *([bulk_rows(results)] if "storecast" in results else []),
        *([fleet_rows(results["fleet"])] if "fleet" in results else []),
        *([recent_rows(results["fleet_recent"])] if "fleet_recent" in results else []),
        _check_lines(verdicts),
    ]
    return f"\n{'-' * _WIDTH}\n".join("\n".join(section) for section in sections)


# The engine's own query of the same records as storecast's uncompressed raw reads (tests/bench/engine_limit.py).
ENGINE_RAW = {"3600_identity": ("raw_3600", "median_ms"), "20000_identity": ("raw", "median_ms")}


def bulk_rows(results: dict[str, Any]) -> list[str]:
    """The bulk phases' figures, one column per system, and storecast's concurrency phase."""
    systems = ("storecast", "influxdb", "victoria_metrics", "engine")
    runs = results["config"]["runs"]
    raw_records = results["config"]["dataset"]["seconds"]
    row = _row

    def per_system(*path: str, engine_path: tuple[str, ...] | None = None, scale: Any = None) -> list[Any]:
        values = []
        for system in systems:
            if system == "engine":
                value = _get(results, "engine", *engine_path) if engine_path else None
            else:
                value = _get(results, system, *path)
            values.append(scale(value) if scale and value is not None else value)
        return values

    lines = [
        row("figure", ["storecast", "InfluxDB", "VictoriaMetrics", "chDB direct"]),
        "-" * _WIDTH,
        row("ingest, records/s", per_system("ingest", "records_per_s", engine_path=("insert_records_per_s",)), 0),
        row("  line protocol, records/s", [_get(results, "storecast_influx", "ingest", "records_per_s")], 0),
        row("  the gateway's parse alone, records/s", [_get(results, "storecast_influx", "parse_alone", "records_per_s")], 0),
        row(
            f"GET 15m avg, ms (median of {runs})", per_system("aggregate", "median_ms", engine_path=("aggregate", "median_ms")), 2
        ),
        row(
            f"GET {raw_records:,} raw records, ms (median of {runs})",
            per_system("raw", "median_ms", engine_path=("raw", "median_ms")),
            2,
        ),
        row(
            "GET 15m avg right after the writes, ms",
            per_system(*AFTER_WRITES, engine_path=("aggregate", "median_ms")),
            2,
        ),
        row("GET 15m avg 2 s after the writes, ms", per_system(*AFTER_2S, engine_path=("aggregate", "median_ms")), 2),
        row("  asked again, its answer kept, ms", [_get(results, "storecast_kept_answers", "aggregate", "median_ms")], 2),
        row(
            f"  {raw_records:,} raw asked again, answer kept, ms",
            [_get(results, "storecast_kept_answers", "raw", "median_ms")],
            2,
        ),
        row(
            "  kept answers: first reads' ms (15m avg, raw)",
            [_get(results, "storecast_kept_answers", read, "first_ms") for read in ("aggregate", "raw")],
            2,
        ),
        *(
            row(
                f"GET {label}, {what}",
                per_system(
                    "raw_by_encoding",
                    key,
                    figure,
                    engine_path=ENGINE_RAW.get(key) if figure == "median_ms" else None,
                    scale=scale,
                ),
                digits,
            )
            for key, label in _raw_reads(results)
            for what, figure, scale, digits in (("ms", "median_ms", None, 2), ("wire KiB", "wire_bytes", _kib, 1))
        ),
        row(
            "RSS after ingest, MiB", per_system("rss_bytes_after_ingest", engine_path=("rss_bytes_after_insert",), scale=_mib), 1
        ),
        *(
            row(f"  {label}, MiB", [_get(results, "storecast", "memory_after_ingest", *path), None, None, engine], 1)
            for label, path, engine in (
                (
                    "services (the engine inside)",
                    ("services", "rss_mib"),
                    _get(results, "engine", "memory_after_insert", "rss_mib"),
                ),
                (
                    "  of it mapped from files",
                    ("services", "mapped_mib"),
                    _get(results, "engine", "memory_after_insert", "mapped_mib"),
                ),
                ("gateway worker", ("gateway", "rss_mib"), None),
            )
        ),
        row(
            "disk, MiB (du, settled)",
            per_system("disk", "allocated", engine_path=("disk_after_optimize_final", "allocated"), scale=_mib),
            2,
        ),
        row(
            "disk, MiB (sum of file sizes)",
            per_system("disk", "apparent", engine_path=("disk_after_optimize_final", "apparent"), scale=_mib),
            2,
        ),
        row("other processes' CPU during the phase, %", per_system(*_SHARE, engine_path=_SHARE, scale=lambda v: 100 * v), 0),
    ]
    concurrency = _get(results, "storecast", "concurrency")
    if concurrency is not None:
        lines += ["-" * _WIDTH, row(f"storecast, 4 writers + 4 readers, {concurrency['seconds']:.0f} s", ["PUT", "GET"])]
        for label, key, digits in (
            ("requests/s", "requests_per_s", 1),
            ("records/s", "records_per_s", 0),
            ("latency p50, ms", "p50_ms", 1),
            ("latency p99, ms", "p99_ms", 1),
            ("errors", "errors", 0),
        ):
            lines.append(row(f"  {label}", [concurrency["put"][key], concurrency["get"][key]], digits))
    return lines


def _check_lines(verdicts: list[Check]) -> list[str]:
    lines = [f"{'check':<44}{'measured':>17}{'target':>17}{'verdict':>17}"]
    for check in verdicts:
        measured = (
            "-"
            if check.measured is None
            else (f"{check.measured:.3f}" if isinstance(check.measured, float) else str(check.measured))
        )
        lines.append(f"{check.name:<44}{measured:>17}{check.target:>17}{check.verdict:>17}")
    return lines


# The fleet shapes' columns: the systems' result keys and names; the recent shape has no engine column.
_FLEET_COLUMNS = {
    "storecast": "storecast",
    "influxdb": "InfluxDB",
    "victoria_metrics": "VictoriaMetrics",
    "engine": "chDB direct",
    "stack_floor": "path's floor",
}
# The floor (stack_floor.py) answers PUTs only: its GET cells stay empty.
_RECENT_COLUMNS = ("storecast", "influxdb", "victoria_metrics", "stack_floor")


def _row(label: str, values: list[Any], digits: int = 1) -> str:
    return f"{label:<44}" + "".join(f"{_cell(v, digits):>17}" for v in values)


def _ratios(fleet: dict[str, Any], columns: Sequence[str], *path: str) -> list[Any]:
    """storecast's figure over each other system's: the storecast column stays empty."""
    mine = _get(fleet, "storecast", *path)
    values: list[Any] = [None]
    for system in columns[1:]:
        theirs = _get(fleet, system, *path)
        values.append(mine / theirs if mine is not None and theirs else None)
    return values


def _per_system(fleet: dict[str, Any], columns: Sequence[str], *path: str, scale: Any = None) -> list[Any]:
    values = [_get(fleet, system, *path) for system in columns]
    return [scale(v) if scale and v is not None else v for v in values]


def _phase_rows(fleet: dict[str, Any], title: str, columns: Sequence[str]) -> list[str]:
    """The figures both fleet shapes have, one column per system, and the neighbours' CPU last."""
    config = fleet["config"]
    clients = config["clients"]

    def per_system(*path: str, scale: Any = None) -> list[Any]:
        return _per_system(fleet, columns, *path, scale=scale)

    many = f"{clients} clients"
    return [
        _row(title, [_FLEET_COLUMNS[system] for system in columns]),
        _row(f"  ({config['seconds']:g} s per phase; {many} = threads in {config['processes']} processes)", []),
        _row("  1 client PUT p50, ms", per_system("single_put", "p50_ms"), 2),
        _row("  1 client PUT p99, ms", per_system("single_put", "p99_ms"), 2),
        _row(f"  {many} PUT/s", per_system("put", "requests_per_s"), 0),
        _row(f"  {many} PUT p50, ms", per_system("put", "p50_ms"), 2),
        _row(f"  {many} PUT p99, ms", per_system("put", "p99_ms"), 2),
        _row(f"  {many} PUT errors", per_system("put", "errors"), 0),
        _row("  1 client GET p50, ms", per_system("single_get", "p50_ms"), 2),
        _row("  1 client GET p99, ms", per_system("single_get", "p99_ms"), 2),
        _row(f"  {many} GET/s", per_system("get", "requests_per_s"), 0),
        _row(f"  {many} GET p50, ms", per_system("get", "p50_ms"), 2),
        _row(f"  {many} GET p99, ms", per_system("get", "p99_ms"), 2),
        _row(f"  {many} GET errors", per_system("get", "errors"), 0),
        _row(f"  storecast / this, {many} PUT/s", _ratios(fleet, columns, "put", "requests_per_s"), 2),
        _row(f"  storecast / this, {many} GET/s", _ratios(fleet, columns, "get", "requests_per_s"), 2),
        _row(f"  server CPU s, {many} PUTs", per_system("put", "server_cpu_s"), 1),
        _row(f"  load generator CPU s, {many} PUTs", per_system("put", "generator_cpu_s"), 1),
        _row("  other processes' CPU during the phase, %", per_system(*_SHARE, scale=lambda v: 100 * v), 0),
    ]


def fleet_rows(fleet: dict[str, Any]) -> list[str]:
    """The historic shape's figures, one column per system (the engine's: its point reads)."""
    many = f"{fleet['config']['clients']} clients"
    return [
        *_phase_rows(fleet, "fleet, historic shape: 1-record requests", tuple(_FLEET_COLUMNS)),
        _row(f"  engine inserts/s, {many} PUTs", [_get(fleet, "storecast", "put", "engine_inserts_per_s")], 1),
        _row("  active parts after PUTs (max seen)", [_parts_cell(fleet)]),
        _row("  acknowledged records read back / lost", [_read_back_cell(fleet)]),
    ]


def recent_rows(recent: dict[str, Any]) -> list[str]:
    """The recent shape's figures; storecast's write-ahead log and hot tier; the hot tier's memory."""
    many = f"{recent['config']['clients']} clients"
    put = _get(recent, "storecast", "put") or {}
    reads = _get(recent, "storecast", "hot_tier_reads") or {}
    memory = recent.get("hot_tier_memory") or {}
    share = reads.get("memory_share")
    return [
        *_phase_rows(recent, "fleet, recent shape: 1-record requests", _RECENT_COLUMNS),
        _row(f"  log flushes/s, {many} PUTs", [put.get("flushes_per_s")], 2),
        _row(f"  records per flush, {many} PUTs", [put.get("records_per_flush")], 0),
        _row(
            "  log peak, MiB: storecast_wal_bytes / on disk",
            [_mib(put.get("peak_wal_bytes")), _mib(put.get("peak_wal_disk_bytes"))],
            2,
        ),
        _row("  hot tier peak during PUTs, MiB", [_mib(put.get("peak_hot_tier_bytes"))], 2),
        _row("  GETs answered from memory, %", [None if share is None else 100 * share], 2),
        _row("  acknowledged records read back / lost", [_read_back_cell(recent)]),
        _row(f"hot tier, 1,000 series x 1 h x {memory.get('attributes', '-')}, MiB", ["counted", "RSS", "budget"]),
        _row(
            f"  per 1,000 series (measured on {memory.get('series', 0):,})",
            [memory.get("per_1000_series_nbytes_mib"), memory.get("per_1000_series_rss_mib"), _mib(memory.get("max_bytes"))],
        ),
    ]


def _parts_cell(fleet: dict[str, Any]) -> str | None:
    put = _get(fleet, "storecast", "put") or {}
    return None if "active_parts_after" not in put else f"{put['active_parts_after']} ({put['active_parts_max']})"


def _read_back_cell(fleet: dict[str, Any]) -> str | None:
    read_back = _get(fleet, "storecast", "read_back")
    return None if read_back is None else f"{read_back['acknowledged']:,} / {read_back['lost']}"


def fleet_table(fleet: dict[str, Any]) -> str:
    """The fleet figures and their verdicts alone (fleet.py run standalone)."""
    return "\n".join([*fleet_rows(fleet), "-" * _WIDTH, *_check_lines(fleet_checks(fleet))])
