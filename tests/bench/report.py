"""The bench's verdicts and its one printed table."""

from __future__ import annotations

import math
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


def _get(results: dict[str, Any], *path: str) -> Any:
    node: Any = results
    for key in path:
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return node


def checks(results: dict[str, Any]) -> list[Check]:
    sc_ingest = _get(results, "storecast", "ingest", "records_per_s")
    sc_agg = _get(results, "storecast", "aggregate", "median_ms")
    sc_raw = _get(results, "storecast", "raw", "median_ms")
    dataset = results["config"]["dataset"]
    concurrency = _get(results, "storecast", "concurrency")
    return [
        _ratio_check("ingest: storecast / InfluxDB", sc_ingest, _get(results, "influxdb", "ingest", "records_per_s"), ">=", 1.5),
        _ratio_check(
            "ingest: storecast / VictoriaMetrics", sc_ingest, _get(results, "victoria_metrics", "ingest", "records_per_s"), ">=", 1.0
        ),
        _ratio_check("ingest: storecast / engine insert", sc_ingest, _get(results, "engine", "insert_records_per_s"), ">=", 0.6),
        _ratio_check("15m avg GET time: storecast / InfluxDB", sc_agg, _get(results, "influxdb", "aggregate", "median_ms"), "<=", 1.0),
        _ratio_check("15m avg GET time: storecast / engine query", sc_agg, _get(results, "engine", "aggregate", "median_ms"), "<=", 2.0),
        _ratio_check("raw GET time: storecast / InfluxDB", sc_raw, _get(results, "influxdb", "raw", "median_ms"), "<=", 0.5),
        _equal_check("storecast raw GET: records", _get(results, "storecast", "raw", "records"), dataset["seconds"]),
        _equal_check("storecast 15m avg GET: buckets", _get(results, "storecast", "aggregate", "buckets"), dataset["expected_buckets"]),
        _equal_check(
            "storecast values: spot-check mismatches", _get(results, "storecast", "value_mismatches"), 0
        ),
        _equal_check("InfluxDB raw GET: records", _get(results, "influxdb", "raw", "records"), dataset["seconds"]),
        _equal_check("InfluxDB 15m avg GET: buckets", _get(results, "influxdb", "aggregate", "buckets"), dataset["expected_buckets"]),
        _equal_check("VictoriaMetrics export: samples per series", _get(results, "victoria_metrics", "raw", "records"), dataset["seconds"]),
        _equal_check(
            "VictoriaMetrics 15m avg: points per series", _get(results, "victoria_metrics", "aggregate", "buckets"), dataset["expected_buckets"]
        ),
        _equal_check("storecast exit code after SIGTERM", _get(results, "storecast", "exit_code"), 0),
        _equal_check("concurrency: errors", None if concurrency is None else concurrency["put"]["errors"] + concurrency["get"]["errors"], 0),
    ]


def _cell(value: Any, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, (int, float)):
        return f"{value:,.{digits}f}"
    return str(value)


def _mib(value: Any) -> Any:
    return None if value is None else value / MIB


def table(results: dict[str, Any], verdicts: list[Check]) -> str:
    systems = ("storecast", "influxdb", "victoria_metrics", "engine")
    runs = results["config"]["runs"]
    raw_records = results["config"]["dataset"]["seconds"]

    def row(label: str, values: list[Any], digits: int = 1) -> str:
        return f"{label:<44}" + "".join(f"{_cell(v, digits):>17}" for v in values)

    def per_system(*path: str, engine_path: tuple[str, ...] | None = None, scale: Any = None) -> list[Any]:
        values = []
        for system in systems:
            if system == "engine":
                value = _get(results, "engine", *engine_path) if engine_path else None
            else:
                value = _get(results, system, *path)
            values.append(scale(value) if scale and value is not None else value)
        return values

    width = 44 + 17 * len(systems)
    lines = [
        row("figure", ["storecast", "InfluxDB", "VictoriaMetrics", "chDB direct"]),
        "-" * width,
        row("ingest, records/s", per_system("ingest", "records_per_s", engine_path=("insert_records_per_s",)), 0),
        row(f"GET 15m avg, ms (median of {runs})", per_system("aggregate", "median_ms", engine_path=("aggregate", "median_ms")), 2),
        row(f"GET {raw_records:,} raw records, ms (median of {runs})", per_system("raw", "median_ms", engine_path=("raw", "median_ms")), 2),
        row("RSS after ingest, MiB", per_system("rss_bytes_after_ingest", scale=_mib), 1),
        row("disk, MiB (du, settled)", per_system("disk", "allocated", engine_path=("disk_after_optimize_final", "allocated"), scale=_mib), 2),
        row("disk, MiB (sum of file sizes)", per_system("disk", "apparent", engine_path=("disk_after_optimize_final", "apparent"), scale=_mib), 2),
        row("other processes' CPU during the phase, %", per_system(*_SHARE, engine_path=_SHARE, scale=lambda v: 100 * v), 0),
    ]
    concurrency = _get(results, "storecast", "concurrency")
    if concurrency is not None:
        lines += ["-" * width, row(f"storecast, 4 writers + 4 readers, {concurrency['seconds']:.0f} s", ["PUT", "GET"])]
        for label, key, digits in (
            ("requests/s", "requests_per_s", 1),
            ("records/s", "records_per_s", 0),
            ("latency p50, ms", "p50_ms", 1),
            ("latency p99, ms", "p99_ms", 1),
            ("errors", "errors", 0),
        ):
            lines.append(row(f"  {label}", [concurrency["put"][key], concurrency["get"][key]], digits))
    lines += ["-" * width, f"{'check':<44}{'measured':>17}{'target':>17}{'verdict':>17}"]
    for check in verdicts:
        measured = "-" if check.measured is None else (f"{check.measured:.3f}" if isinstance(check.measured, float) else str(check.measured))
        lines.append(f"{check.name:<44}{measured:>17}{check.target:>17}{check.verdict:>17}")
    return "\n".join(lines)
