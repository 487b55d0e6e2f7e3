"""`make bench`: storecast side by side with InfluxDB, VictoriaMetrics and its own engine.

One dataset (meter-3p, N equipments x S seconds at 1 s) goes to every
system from one sequential client in batches of 5,000 records, bodies
encoded before the clock starts. Each system runs alone, on loopback, on its
own temporary directory, and is stopped (by pid) before the next one starts.

    .venv/bin/python tests/bench/run.py [--quick] [--skip-peers] [--concurrency-seconds N] [--runs N]
                                        [--fleet-seconds N] [--fleet-clients N] [--fleet-processes N]
                                        [--fleet-only] [--fleet-shapes historic recent] [--hot-series N]
                                        [--profile DIR] [--output FILE] [--keep-data] [--wait-for-quiet S]

Then the fleet workload in two shapes, each phase for --fleet-seconds against
fresh instances of every system: N clients each sending 1-record PUTs, then
1-record GETs. The historic shape (fleet.py) writes records a day old and reads
seeded ones three days old, beside the engine's own point-read limit; the
recent shape (recent.py) writes records of the last hour and reads those very
records, which storecast answers from its hot tier; then the hot tier's memory
for 1,000 series x 1 h (hot_memory.py). --fleet-only runs just these.

On a shared machine every figure moves with the neighbours' load: the run
records how much CPU other processes took during each phase, and
--wait-for-quiet holds the start until the cores are free.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import codings
import concurrency
import fleet
import httpx
import large_puts
import long_ranges
import numpy as np
import peers
import profiling
import reads
import recent
import report
import typed
from influx_ingest import bench_influx_write
from kept_answers import bench_kept_answers
from processes import CpuAccount, chdb_disk_usage, disk_usage, rss_bytes, storecast_memory, wait_for_stable_disk
from storecast_target import REPO, Storecast, body_of, range_params, results_of, start_storecast
from timing import repeat
from workload import (
    ATTRIBUTES,
    BUCKET_MS,
    WARMUP_RECORDS,
    WARMUP_SITE_ID,
    Dataset,
    json_bodies,
    json_body,
    line_protocol_bodies,
    recent_aligned_start_ms,
)

SITE_ID = 100
SYSTEMS = ("engine", "storecast", "influxdb", "victoria_metrics")
FLEET_SHAPES = ("historic", "recent")
PEERS: tuple[tuple[str, Callable[[Path], peers.Peer]], ...] = (
    ("influxdb", peers.InfluxDB),
    ("victoria_metrics", peers.VictoriaMetrics),
)
PROFILE_SITE_ID = 101
FULL = {"equipments": 10, "seconds": 20_000}
QUICK = {"equipments": 4, "seconds": 3_600}


def say(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--quick", action="store_true", help="a smaller dataset, a 5 s concurrency phase and 3 s fleet phases, for a smoke run"
    )
    parser.add_argument("--skip-peers", action="store_true", help="storecast and the direct engine only")
    parser.add_argument(
        "--concurrency-seconds", type=float, default=None, help="length of the mixed phase (default 30, quick 5; 0 skips it)"
    )
    parser.add_argument("--runs", type=int, default=7, help="timed runs per GET figure, after one warm-up (at least 5)")
    parser.add_argument(
        "--profile", type=Path, default=None, help="also profile storecast's PUT and GET paths with py-spy into DIR"
    )
    parser.add_argument("--output", type=Path, default=REPO / "bench-results.json")
    parser.add_argument("--keep-data", action="store_true", help="keep the temporary data directories")
    parser.add_argument(
        "--wait-for-quiet", type=float, default=0, metavar="SECONDS",
        help="before each system, wait up to SECONDS for other processes to leave the CPUs (under 10%% for 15 s);"
        " a phase they disturbed anyway (over 15%%) is measured again, at most 3 times",
    )  # fmt: skip
    parser.add_argument(
        "--fleet-seconds",
        type=float,
        default=None,
        help="length of each fleet phase (default 10, quick 3; 0 skips the fleet workload)",
    )
    parser.add_argument("--fleet-clients", type=int, default=16, help="clients of the fleet's concurrent phases")
    parser.add_argument(
        "--fleet-only",
        action="store_true",
        help="only the fleet workload and the hot tier's memory: no bulk ingest, concurrency, long-range or typed phase",
    )
    parser.add_argument(
        "--fleet-shapes",
        nargs="+",
        choices=FLEET_SHAPES,
        default=list(FLEET_SHAPES),
        help="the fleet workload's shapes: historic (records days old) and recent (the last hour, with the hot tier's memory)",
    )
    parser.add_argument(
        "--hot-series",
        type=int,
        default=None,
        help="series of the hot tier's memory measurement, x 1 h; reported per 1,000 (default 1,000, quick 100)",
    )
    parser.add_argument(
        "--long-days",
        type=int,
        nargs="*",
        default=None,
        help="days of the long-range phase's datasets (default 14 90, quick 2 7; none skips it)",
    )
    parser.add_argument(
        "--typed-records",
        type=int,
        default=None,
        help="records of the typed gRPC phase, ingest and stream (default 1,000,000, quick 200,000; 0 skips it)",
    )
    parser.add_argument(
        "--fleet-processes", type=int, default=4, help="load generator processes the fleet's clients are spread over"
    )
    args = parser.parse_args(argv)
    if args.runs < 5:
        parser.error("--runs must be at least 5")
    if args.concurrency_seconds is None:
        args.concurrency_seconds = 5.0 if args.quick else 30.0
    if not 0 <= args.concurrency_seconds <= 600:
        parser.error("--concurrency-seconds must be within [0, 600]")
    if args.fleet_seconds is None:
        args.fleet_seconds = 3.0 if args.quick else 10.0
    if not 0 <= args.fleet_seconds <= 600:
        parser.error("--fleet-seconds must be within [0, 600]")
    if args.long_days is None:
        args.long_days = [2, 7] if args.quick else [14, 90]
    if args.typed_records is None:
        args.typed_records = 200_000 if args.quick else 1_000_000
    if args.fleet_clients < 1 or args.fleet_processes < 1:
        parser.error("--fleet-clients and --fleet-processes must be at least 1")
    if args.fleet_only:
        if args.fleet_seconds == 0:
            parser.error("--fleet-only needs --fleet-seconds above 0")
        args.long_days, args.typed_records = [], 0
    if args.hot_series is None:
        args.hot_series = 100 if args.quick else 1_000
    if args.hot_series < 1:
        parser.error("--hot-series must be at least 1")
    return args


# -- storecast -----------------------------------------------------------------------------------


def _value_mismatches(dataset: Dataset, equipment_id: int, raw: list[dict[str, Any]], buckets: list[dict[str, Any]]) -> int:
    """Spot checks against the generated values: first and last raw record, first bucket's average."""
    mask = dataset.columns["id"] == equipment_id
    mismatches = 0
    for record, index in ((raw[0], 0), (raw[-1], -1)):
        expected = {name: dataset.columns[name][mask][index].item() for name in ("timestamp", "id", *ATTRIBUTES)}
        mismatches += sum(record.get(name) != value for name, value in expected.items())
    first_bucket = dataset.columns["timestamp"][mask] < dataset.start_ms + BUCKET_MS
    for name in ATTRIBUTES:
        expected_mean = float(np.mean(dataset.columns[name][mask][first_bucket]))
        mismatches += not abs(float(buckets[0][name]) - expected_mean) <= 1e-9 * max(1.0, abs(expected_mean))
    return mismatches


def _ingest(put: Callable[[bytes], None], bodies: list[bytes]) -> float:
    started = time.perf_counter()
    for body in bodies:
        put(body)
    return time.perf_counter() - started


# Each profiled phase repeats its work for at least this long (at most PROFILE_MAX_ROUNDS
# rounds), so a 100 Hz sampler gathers enough samples to rank frames.
PROFILE_SECONDS = 10.0
PROFILE_MAX_ROUNDS = 50


def _profile_storecast(
    target: Storecast, client: httpx.Client, dataset: Dataset, bodies: list[bytes], directory: Path
) -> dict[str, Any]:
    """Profiles of the PUT and GET paths, in phases of their own after the timed ones."""
    summaries: dict[str, str] = {}
    equipment_id = dataset.equipment_ids[0]

    def ingest_round(round_index: int) -> None:
        # Sites of their own: fresh keys, so the inserts are new rows as in the timed ingest.
        site_id = PROFILE_SITE_ID + round_index
        for body in bodies:
            response = Storecast.put(client, site_id, body)
            if response.status_code != 201:
                raise RuntimeError(f"profile PUT -> {response.status_code}: {response.text[:300]}")

    def get_round(params: dict[str, str | int]) -> None:
        for _ in range(5):
            results_of(Storecast.get(client, SITE_ID, equipment_id, params))

    phases: dict[str, Callable[[int], None]] = {
        "put": ingest_round,
        "get-raw": lambda _: get_round(range_params(dataset)),
        "get-agg": lambda _: get_round(range_params(dataset, agg="avg", period="15m")),
    }
    for name, phase in phases.items():
        output = directory / f"storecast-{name}.txt"
        say(f"profiling storecast {name} -> {output}")
        with profiling.Recorder(target.server.pid, output) as recorder:
            started = time.monotonic()
            for round_index in range(PROFILE_MAX_ROUNDS):
                phase(round_index)
                if time.monotonic() - started >= PROFILE_SECONDS:
                    break
        summaries[name] = profiling.summarize(recorder, f"storecast {name}")
    (directory / "summary.txt").write_text("\n".join(summaries.values()))
    return {"directory": str(directory), "summaries": summaries}


def bench_storecast(workdir: Path, dataset: Dataset, bodies: list[bytes], args: argparse.Namespace) -> dict[str, Any]:
    target = start_storecast(workdir, max_records=max(100_000, dataset.seconds))
    say(f"storecast up (pid {target.server.pid}) at {target.server.base_url}")
    result: dict[str, Any] = {"pid": target.server.pid, "memory_at_start": storecast_memory(target.server.pid)}
    equipment_id = dataset.equipment_ids[len(dataset.equipment_ids) // 2]
    try:
        with target.client() as client:

            def put(body: bytes) -> None:
                response = Storecast.put(client, dataset.site_id, body)
                if response.status_code != 201:
                    raise RuntimeError(f"PUT -> {response.status_code}: {response.text[:300]}")

            # Untimed: opens the keep-alive TLS connection and pays the first insert's one-off costs.
            warmup = Storecast.put(client, WARMUP_SITE_ID, json_body(dataset, 0, min(WARMUP_RECORDS, dataset.records)))
            if warmup.status_code != 201:
                raise RuntimeError(f"warm-up PUT -> {warmup.status_code}: {warmup.text[:300]}")
            seconds = _ingest(put, bodies)
            written_at = time.monotonic()
            result["ingest"] = {
                "seconds": round(seconds, 3),
                "records_per_s": round(dataset.records / seconds, 1),
                "requests": len(bodies),
            }
            result["rss_bytes_after_ingest"] = rss_bytes(target.server.pid)
            result["memory_after_ingest"] = storecast_memory(target.server.pid)
            result["aggregate_as_writes_end"] = reads.aggregates_as_writes_end(
                lambda: Storecast.get(client, dataset.site_id, equipment_id, range_params(dataset, agg="avg", period="15m")),
                written_at,
                args.runs,
            )
            say(f"storecast ingest: {dataset.records / seconds:,.0f} records/s")
            wait_for_stable_disk(target.server.data_dir)
            result["disk"] = chdb_disk_usage(target.server.data_dir)

            aggregate = repeat(
                lambda: Storecast.get(client, dataset.site_id, equipment_id, range_params(dataset, agg="avg", period="15m")),
                args.runs,
            )
            raw = repeat(lambda: Storecast.get(client, dataset.site_id, equipment_id, range_params(dataset)), args.runs)
            buckets, records = results_of(aggregate.last), results_of(raw.last)
            result["aggregate"] = {**aggregate.as_json(), "buckets": len(buckets), "bytes": len(aggregate.last.content)}
            result["raw"] = {**raw.as_json(), "records": len(records), "bytes": len(raw.last.content)}
            result["value_mismatches"] = _value_mismatches(dataset, equipment_id, records, buckets)
            result["raw_by_encoding"] = reads.raw_by_length_and_encoding(
                client, lambda d: body_of(Storecast.get(client, d.site_id, equipment_id, range_params(d))), dataset, args.runs
            )
            result["rss_bytes_after_queries"] = rss_bytes(target.server.pid)
            result["codings"] = codings.measure(raw.last.content)
            say(f"storecast GET 15m avg {aggregate.median_ms:.1f} ms, raw {raw.median_ms:.1f} ms")

            if args.profile is not None:
                result["profile"] = _profile_storecast(target, client, dataset, bodies, args.profile)
        if args.concurrency_seconds > 0:
            say(f"storecast: 4 writers + 4 readers for {args.concurrency_seconds:g} s")
            result["concurrency"] = concurrency.run_mixed(target, dataset, args.concurrency_seconds)
            result["rss_bytes_after_concurrency"] = rss_bytes(target.server.pid)
        say(f"storecast: {large_puts.PUTS} concurrent PUTs of {large_puts.BODY_BYTES >> 20} MiB")
        large = result["large_puts"] = large_puts.run(target, dataset)
        say(
            f"storecast: {large['admitted']} admitted, {large['refused']} refused; RSS {large['rss_before_mib']:.0f} -> "
            f"{large['rss_peak_mib']:.0f} MiB, {large['growth_per_admitted_byte']} x the admitted bytes"
        )
    finally:
        code = target.server.stop()
        result["exit_code"] = code
        say(f"storecast stopped (exit {code})")
    return result


# -- peers ---------------------------------------------------------------------------------------


def bench_peer(
    peer_class: Callable[[Path], peers.Peer], workdir: Path, dataset: Dataset, bodies: list[bytes], runs: int
) -> dict[str, Any]:
    peer: peers.Peer = peer_class(workdir)
    say(f"{peer.name} up (pid {peer.server.pid}) at {peer.server.base_url}")
    result: dict[str, Any] = {"pid": peer.server.pid}
    equipment_id = dataset.equipment_ids[len(dataset.equipment_ids) // 2]
    try:
        with httpx.Client(timeout=120) as client:
            peer.warm_up(client, dataset)  # untimed, as for storecast; also opens the keep-alive connection

            def ingest_all() -> None:
                for body in bodies:
                    peer.write(client, body)
                peer.finish_ingest(client)

            started = time.perf_counter()
            ingest_all()
            seconds = time.perf_counter() - started
            written_at = time.monotonic()
            result["ingest"] = {
                "seconds": round(seconds, 3),
                "records_per_s": round(dataset.records / seconds, 1),
                "requests": len(bodies),
            }
            result["rss_bytes_after_ingest"] = rss_bytes(peer.server.pid)
            result["aggregate_as_writes_end"] = reads.aggregates_as_writes_end(
                lambda: peer.aggregate(client, dataset, equipment_id), written_at, runs
            )
            say(f"{peer.name} ingest: {dataset.records / seconds:,.0f} records/s")
            result["disk_right_after_ingest"] = vars(disk_usage(peer.server.data_dir))
            result["disk"] = vars(peer.settle_for_disk(client))
            result["disk_note"] = peer.settle_note

            aggregate = repeat(lambda: peer.aggregate(client, dataset, equipment_id), runs)
            raw = repeat(lambda: peer.raw(client, dataset, equipment_id), runs)
            result["aggregate"] = {
                **aggregate.as_json(),
                "buckets": peer.count_buckets(aggregate.last),
                "query": peer.aggregate_note,
            }
            result["raw"] = {**raw.as_json(), "records": peer.count_raw_records(raw.last), "query": peer.raw_note}
            result["raw_by_encoding"] = reads.raw_by_length_and_encoding(
                client, lambda d: peer.raw(client, d, equipment_id), dataset, runs
            )
            result["rss_bytes_after_queries"] = rss_bytes(peer.server.pid)
            say(f"{peer.name} GET 15m avg {aggregate.median_ms:.1f} ms, raw {raw.median_ms:.1f} ms")
    finally:
        result["exit_code"] = peer.server.stop()
        say(f"{peer.name} stopped (exit {result['exit_code']})")
    return result


# -- the engine's own limit ----------------------------------------------------------------------


def bench_engine(workdir: Path, dataset: Dataset, runs: int) -> dict[str, Any]:
    store = workdir / "engine" / "store"
    store.parent.mkdir(parents=True)
    argv = [
        sys.executable,
        str(Path(__file__).with_name("engine_limit.py")),
        "--store", str(store),
        "--site-id", str(dataset.site_id),
        "--equipments", *map(str, dataset.equipment_ids),
        "--start-ms", str(dataset.start_ms),
        "--seconds", str(dataset.seconds),
        "--batch-records", str(dataset.batch_records),
        "--runs", str(runs),
        "--query-equipment", str(dataset.equipment_ids[len(dataset.equipment_ids) // 2]),
    ]  # fmt: skip
    completed = subprocess.run(argv, capture_output=True, text=True, timeout=1800, check=False)
    if completed.returncode != 0:
        raise RuntimeError(f"engine_limit.py failed ({completed.returncode}):\n{completed.stderr[-3000:]}")
    result = json.loads(completed.stdout)
    if not isinstance(result, dict):
        raise RuntimeError(f"engine_limit.py printed no JSON object: {completed.stdout[:300]}")
    return result


# -- the fleet workload --------------------------------------------------------------------------


def bench_fleet(workdir: Path, args: argparse.Namespace) -> dict[str, Any]:
    """fleet.py's phases on the engine, a fresh storecast and (unless skipped) fresh peers, each measured alone."""
    seed_seconds = fleet.SEED_SECONDS["quick" if args.quick else "full"]
    config = fleet.FleetConfig(args.fleet_clients, args.fleet_processes, args.fleet_seconds, seed_seconds)
    dataset = fleet.seed_dataset(config)
    results: dict[str, Any] = {"config": config.as_json()}
    say(f"fleet: {config.clients} clients in {config.processes} processes, {config.seconds:g} s per phase")
    say(f"fleet: {dataset.records:,} seeded records for the reads")
    results["engine"] = measured_alone("fleet-engine", lambda d: fleet.bench_engine(d, dataset, config), workdir, args)
    results["storecast"] = measured_alone("fleet-storecast", lambda d: fleet.bench_storecast(d, dataset, config), workdir, args)
    if not args.skip_peers:
        for key, peer_class in PEERS:

            def phase(d: Path, c: Callable[[Path], peers.Peer] = peer_class) -> dict[str, Any]:
                return fleet.bench_peer(c, d, dataset, config)

            results[key] = measured_alone(f"fleet-{key}", phase, workdir, args)
    return results


def bench_fleet_recent(workdir: Path, args: argparse.Namespace) -> dict[str, Any]:
    """recent.py's phases on a fresh storecast and (unless skipped) fresh peers, its PUTs on the request
    path's floor (stack_floor.py), then the hot tier's memory."""
    config = fleet.FleetConfig(args.fleet_clients, args.fleet_processes, args.fleet_seconds)
    results: dict[str, Any] = {"config": recent.config_json(config)}
    say(f"fleet, recent shape: {config.clients} clients in {config.processes} processes, {config.seconds:g} s per phase")
    results["storecast"] = measured_alone("recent-storecast", lambda d: recent.bench_storecast(d, config), workdir, args)
    if not args.skip_peers:
        for key, peer_class in PEERS:

            def phase(d: Path, c: Callable[[Path], peers.Peer] = peer_class) -> dict[str, Any]:
                return recent.bench_peer(c, d, config)

            results[key] = measured_alone(f"recent-{key}", phase, workdir, args)
    results["stack_floor"] = measured_alone("recent-stack-floor", lambda d: recent.bench_floor(d, config), workdir, args)
    say(f"hot tier memory: {args.hot_series:,} series x 1 h, in a process of its own")
    results["hot_tier_memory"] = measured_alone(
        "hot-tier-memory", lambda _: recent.measure_hot_memory(args.hot_series), workdir, args
    )
    return results


# -- main ----------------------------------------------------------------------------------------


def bench_bulk(workdir: Path, dataset: Dataset, args: argparse.Namespace, results: dict[str, Any]) -> None:
    """The bulk phases: the engine's limit, storecast (and its concurrency phase), then each peer."""
    say(f"dataset: {dataset.records:,} records x {len(ATTRIBUTES)} attributes")
    started = time.perf_counter()
    bodies = json_bodies(dataset)
    say(f"encoded {len(bodies)} JSON bodies ({sum(map(len, bodies)) / 1e6:.1f} MB) in {time.perf_counter() - started:.1f} s")

    say("engine limit: clickhouse-connect into chDB, in a separate process")
    results["engine"] = measured_alone("engine", lambda d: bench_engine(d, dataset, args.runs), workdir, args)
    say(f"engine insert: {results['engine']['insert_records_per_s']:,.0f} records/s")

    results["storecast"] = measured_alone("storecast", lambda d: bench_storecast(d, dataset, bodies, args), workdir, args)
    say("storecast's InfluxDB write API: the same records as 5,000-line bodies on /ext/influx/write")
    results["storecast_influx"] = measured_alone("storecast-influx", lambda d: bench_influx_write(d, dataset), workdir, args)
    say(f"storecast /ext/influx/write: {results['storecast_influx']['ingest']['records_per_s']:,.0f} records/s")
    say("storecast: the same reads asked again, answers kept in memory")
    kept = results["storecast_kept_answers"] = measured_alone(
        "storecast-kept-answers", lambda d: bench_kept_answers(d, dataset, bodies, args.runs), workdir, args
    )
    say(f"storecast kept answers: 15m avg {kept['aggregate']['median_ms']:.1f} ms, raw {kept['raw']['median_ms']:.1f} ms")

    if not args.skip_peers:
        started = time.perf_counter()
        lines = line_protocol_bodies(dataset)
        megabytes = sum(map(len, lines)) / 1e6
        say(f"encoded {len(lines)} line-protocol bodies ({megabytes:.1f} MB) in {time.perf_counter() - started:.1f} s")
        for key, peer_class in PEERS:

            def phase(d: Path, c: Callable[[Path], peers.Peer] = peer_class) -> dict[str, Any]:
                return bench_peer(c, d, dataset, lines, args.runs)

            results[key] = measured_alone(key, phase, workdir, args)


def versions() -> dict[str, str]:
    import chdb
    import clickhouse_connect

    return {
        "python": platform.python_version(),
        "chdb": getattr(chdb, "__version__", "unknown"),
        "clickhouse_connect": clickhouse_connect.__version__,
        "cpus": str(len(os.sched_getaffinity(0))),
    }


def wait_for_quiet_machine(limit_s: float, window_s: float = 15, threshold: float = 0.10) -> float:
    """Wait until other processes use under `threshold` of the machine for `window_s`; the share last seen."""
    deadline = time.monotonic() + limit_s
    share = 1.0
    while time.monotonic() < deadline:
        start = CpuAccount.now()
        time.sleep(min(window_s, max(deadline - time.monotonic(), 0.1)))
        share = CpuAccount.now().since(start)["other_processes_share_of_machine"]
        if share < threshold:
            return share
        say(f"other processes use {100 * share:.0f}% of the CPUs; waiting")
    return share


# A phase during which other processes took more of the machine than this is measured again.
NOISY_SHARE = 0.15
MAX_ATTEMPTS = 3


def measured_alone(name: str, phase: Callable[[Path], dict[str, Any]], workdir: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Run one system's phase in a fresh directory, recording the CPU other processes took meanwhile.

    With --wait-for-quiet, a phase first waits for free CPUs, and one that the
    neighbours disturbed anyway (over NOISY_SHARE) is run again from scratch,
    at most MAX_ATTEMPTS times; the least disturbed attempt is kept.
    """
    attempts: list[dict[str, Any]] = []
    for attempt in range(1, (MAX_ATTEMPTS if args.wait_for_quiet > 0 else 1) + 1):
        if args.wait_for_quiet > 0:
            wait_for_quiet_machine(args.wait_for_quiet)
        start = CpuAccount.now()
        result = phase(workdir / f"{name}-{attempt}")
        result["machine_cpu"] = CpuAccount.now().since(start)
        attempts.append(result)
        share = result["machine_cpu"]["other_processes_share_of_machine"]
        if share <= NOISY_SHARE:
            break
        say(f"{name}: other processes took {100 * share:.0f}% of the CPUs during the phase")
    kept = min(attempts, key=lambda r: r["machine_cpu"]["other_processes_share_of_machine"])
    kept["attempts_other_shares"] = [r["machine_cpu"]["other_processes_share_of_machine"] for r in attempts]
    return kept


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    shape = QUICK if args.quick else FULL
    dataset = Dataset(SITE_ID, tuple(range(1, shape["equipments"] + 1)), recent_aligned_start_ms(), shape["seconds"])
    results: dict[str, Any] = {
        "config": {
            "quick": args.quick,
            "runs": args.runs,
            "warmup_runs": 1,
            "dataset": {
                "equipment_type": "meter-3p",
                "site_id": dataset.site_id,
                "equipments": len(dataset.equipment_ids),
                "seconds": dataset.seconds,
                "records": dataset.records,
                "values": dataset.records * len(ATTRIBUTES),
                "batch_records": dataset.batch_records,
                "start_ms": dataset.start_ms,
                "end_ms": dataset.end_ms,
                "expected_buckets": dataset.expected_buckets,
                "query_equipment": dataset.equipment_ids[len(dataset.equipment_ids) // 2],
            },
            "versions": versions(),
        },
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    cpu_at_start = CpuAccount.now()
    results["config"]["loadavg_at_start"] = Path("/proc/loadavg").read_text().split()[:3]
    results["config"]["fleet_only"] = args.fleet_only
    workdir = Path(tempfile.mkdtemp(prefix="storecast-bench-"))
    say(f"work dir {workdir}")
    try:
        if not args.skip_peers:
            results["config"]["peer_binaries"] = peers.ensure_installed()
            results["config"]["versions"].update(
                {"influxdb": peers.package_version("influxdb"), "victoria-metrics": peers.package_version("victoria-metrics")}
            )
        if not args.fleet_only:
            bench_bulk(workdir, dataset, args, results)

        if args.fleet_seconds > 0 and "historic" in args.fleet_shapes:
            results["fleet"] = bench_fleet(workdir, args)
        if args.fleet_seconds > 0 and "recent" in args.fleet_shapes:
            results["fleet_recent"] = bench_fleet_recent(workdir, args)

        if args.long_days:
            say(f"long ranges: {' and '.join(map(str, args.long_days))} days of one meter-3p at 1 Hz, rollups against the peers")
            results["long_ranges"] = measured_alone(
                "long_ranges",
                lambda d: long_ranges.bench_long_ranges(d, args.long_days, not args.skip_peers, say),
                workdir,
                args,
            )

        if args.typed_records > 0:
            say(f"typed gRPC API: ingest in 5k and 100k batches against JSON, a stream of {args.typed_records:,} records")
            imported = 1_000_000 if args.quick else 10_000_000
            results["typed"] = measured_alone(
                "typed", lambda d: typed.bench_typed(d, args.typed_records, imported), workdir, args
            )
    finally:
        # Every server was stopped by its own bench function; only the files are left.
        if args.keep_data:
            say(f"data kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)

    # Other work on the same cores skews every figure; say how much there was.
    results["machine_cpu"] = CpuAccount.now().since(cpu_at_start)
    verdicts = report.checks(results)
    results["checks"] = [check.as_json() for check in verdicts]
    results["notes"] = NOTES
    args.output.write_text(json.dumps(results, indent=2) + "\n")
    print()
    print(report.table(results, verdicts))
    shares = {key: results[key]["machine_cpu"]["other_processes_share_of_machine"] for key in SYSTEMS if key in results}
    for fleet_key, label in (("fleet", "fleet"), ("fleet_recent", "fleet recent")):
        shares |= {
            f"{label} {key}": phase["machine_cpu"]["other_processes_share_of_machine"]
            for key, phase in results.get(fleet_key, {}).items()
            if key in SYSTEMS
        }
    noisiest = max(shares, key=shares.__getitem__)
    print(
        f"\nother processes' share of the CPUs during each phase: at most {100 * shares[noisiest]:.0f}% ({noisiest})"
        + ("; the machine was shared, figures are noisy" if shares[noisiest] > NOISY_SHARE else "")
    )
    print(f"figures in {args.output}")
    if "profile" in results.get("storecast", {}):
        print(f"profiles in {results['storecast']['profile']['directory']} (summary.txt)")
    return 0


NOTES = {
    "clients": (
        "one sequential httpx client per system, keep-alive; storecast over HTTPS with the admin client certificate,"
        " the peers over plain HTTP"
    ),
    "warmup": (
        f"before the clock, every system takes the first {WARMUP_RECORDS:,} records elsewhere (site {WARMUP_SITE_ID},"
        " InfluxDB database warmup, VictoriaMetrics measurement warmup; the peers' are deleted before the disk is measured)"
    ),
    "ingest": (
        "wall time of all batches; VictoriaMetrics' includes a final /internal/force_flush so its rows are searchable,"
        " as InfluxDB's and storecast's are on return"
    ),
    "gets": "median of the timed runs after one warm-up run; the time includes reading the whole body, not decoding it",
    "rss": "VmRSS from /proc/PID/status of the server and its descendants",
    "disk_storecast": (
        "storecast's chDB directory once its size is stable (background merges done),"
        " no OPTIMIZE (no other process can open it), less the merged-away parts ClickHouse keeps"
        " for old_parts_lifetime (8 min) before deleting them"
    ),
    "disk_engine": "the direct engine's chDB directory after OPTIMIZE TABLE ... FINAL, less merged-away parts likewise",
    "disk_peers": (
        "InfluxDB: cache snapshot and full compaction 5 s after the last write; VictoriaMetrics: force_flush + force_merge;"
        " then a stable size"
    ),
    "engine": (
        "separate process; same DDL (services.lib.store.schema), batches of the same size, Python-list columns,"
        " column_oriented=True; storecast's own SQL for the reads"
    ),
    "fleet": (
        "fresh instance per system; N client threads spread over spawned processes, one keep-alive connection each,"
        " requests built and connections opened (one untimed request) before the clock; every response checked;"
        " PUT/s and GET/s count checked successes over the phase's wall time; storecast's engine inserts/s are"
        " block numbers allocated per table during the phase and its active parts are part directories no other"
        " part covers, both read from its chDB directory (tests/bench/parts.py); the engine column is storecast's"
        " raw-record SQL on chDB directly (engine_point_reads.py), single thread and N threads"
    ),
    "fleet_recent": (
        "the recent shape (recent.py): the fleet's generator on fresh instances, PUT timestamps from 50 min back"
        " and 1 ms apart, GETs of [t, t + 1 ms[ around records acknowledged in its own PUT phases; storecast with"
        " STORECAST_METRICS_PORT set (its gateway workers then keep their metrics in prometheus-client's multiprocess"
        " files), its /metrics sampled every 0.25 s during the N-client phases: flushes and records written are the"
        " counters' growth over the phase, flushes/s per second of it; storecast_wal_bytes is set after each flush"
        " (once its segments are released), so the log directory's size on disk is sampled beside it"
    ),
    "hot_tier_memory": (
        "hot_memory.py, a process of its own: a HotTier filled as the ingest service does, one 1-record PUT per series"
        " per second for an hour, time-major, 13 float attributes; counted = the tier's nbytes (what"
        " STORECAST_HOT_MAX_BYTES bounds: the arrays' data plus a fixed overhead per chunk and series), RSS = the"
        " process's VmRSS growth (array headers, chunks, series, allocator slack included), both scaled to 1,000 series"
    ),
}


if __name__ == "__main__":
    sys.exit(main())
