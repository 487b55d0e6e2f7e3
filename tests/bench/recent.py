"""The fleet workload's recent-data shape: 1-record PUTs of the last hour, and GETs of those very records.

fleet.py's phases (the "historic shape") write records a day old and read
records seeded three days back, so every read is the engine's. Here the same
load generator writes records whose timestamps lie within the last hour and
reads them back, which storecast may answer from its hot tier
(services/lib/recent/). Per system, on a fresh instance, after an untimed
warm-up of RECENT_WARMUP_SECONDS x 16 recent records:

1. one client, 1-record PUTs back to back: p50/p99;
2. N clients, each PUTting 1 record at a time to its own equipment id: PUT/s,
   p50/p99; for storecast also its write-ahead log during the phase (from
   /metrics: flushes and records per flush, the peak of storecast_wal_bytes,
   and of the log's directory on disk, sampled every WATCH_EVERY_S), then every
   acknowledged record read back;
3. one client, 1-record GETs of records acknowledged in 1 and 2 (each a read of
   [t, t + 1 ms[, PUT records being 1 ms apart): p50/p99;
4. N clients doing the same: GET/s, p50/p99.

For storecast, storecast_hot_tier_reads_total{answered_from} counted over 3
and 4 says how many reads memory answered. PUT timestamps start
RECENT_BASE_AGE_MS back and advance 1 ms per record, so a phase of up to
--fleet-seconds 600 stays in the past and within the hot tier's hour.

hot_memory.py measures the hot tier's memory for 1,000 series x 1 h apart, in
a process of its own.
"""

from __future__ import annotations

import json
import os
import random
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import fleet
import httpx
import peers
from fleet import (
    FLEET_SITE_ID,
    GET_TARGETS_PER_CLIENT,
    PUT_STEP_MS,
    SEED_EQUIPMENTS,
    ClientLog,
    FleetConfig,
    GetPlan,
    Plan,
    PutPlan,
    SystemUnderTest,
)
from processes import free_port, launch, wait_for_stable_disk, wait_until
from storecast_target import REPO, start_storecast
from workload import STEP_MS, Dataset, line_protocol_bodies

# Equipment ids of their own, apart from the historic shape's (19,999 and 20,000 on).
RECENT_SINGLE_PUT_ID = 39_999
RECENT_PUT_ID_BASE = 40_000
RECENT_BASE_AGE_MS = 50 * 60_000
RECENT_WARMUP_SECONDS = 60
WATCH_EVERY_S = 0.25
HOT_MEMORY_TIMEOUT_S = 1800

say = fleet.say


def warmup_dataset() -> Dataset:
    """A minute of 16 meters, an hour back and whole seconds: the untimed first writes of a fresh system."""
    start_ms = (int(time.time()) - 3_600 + 300) * 1000
    return Dataset(FLEET_SITE_ID, tuple(range(1, SEED_EQUIPMENTS + 1)), start_ms, RECENT_WARMUP_SECONDS)


# -- storecast's /metrics ------------------------------------------------------------------------

Sample = tuple[str, dict[str, str], float]
_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)")
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')
# The families read here (`name[]` filters the endpoint's answer to them).
_WATCHED = (
    "storecast_wal_bytes",
    "storecast_wal_unflushed_rows",
    "storecast_wal_flushes_total",
    "storecast_hot_tier_bytes",
    "storecast_hot_tier_reads_total",
    "storecast_records_written_total",
)


def scrape(url: str) -> list[Sample]:
    """The watched samples of a Prometheus text endpoint."""
    response = httpx.get(url, params={"name[]": list(_WATCHED)}, timeout=10)
    response.raise_for_status()
    samples: list[Sample] = []
    for line in response.text.splitlines():
        found = _SAMPLE.match(line)
        if found is not None and not line.startswith("#"):
            samples.append((found[1], dict(_LABEL.findall(found[2] or "")), float(found[3])))
    return samples


def total(samples: list[Sample], name: str, **labels: str) -> float:
    """The sum of a family's samples whose labels include `labels`."""
    return sum(value for sample, have, value in samples if sample == name and labels.items() <= have.items())


class MetricsWatch:
    """storecast's /metrics and its log directory during one phase: counters' growth, gauges' peaks.

    start() runs as the phase's clock starts; a thread samples every WATCH_EVERY_S
    until finish(). The log's gauge is set after each flush (once its segments are
    released), so its peak understates the log's; the directory's is sampled too."""

    def __init__(self, metrics_url: str, log_dir: Path) -> None:
        if not log_dir.is_dir():
            raise RuntimeError(f"no write-ahead log at {log_dir}: is STORECAST_LOG on?")
        self._url = metrics_url
        self._log_dir = log_dir
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="metrics-watch", daemon=True)
        self._first: list[Sample] = []
        self._started = 0.0
        self.peaks = {"wal_bytes": 0.0, "wal_disk_bytes": 0.0, "wal_unflushed_rows": 0.0, "hot_tier_bytes": 0.0}
        self.failed_scrapes = 0

    def start(self) -> None:
        self._first = scrape(self._url)
        self._started = time.monotonic()
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(WATCH_EVERY_S):
            self._sample()

    def _sample(self) -> list[Sample]:
        try:
            samples = scrape(self._url)
        except httpx.HTTPError:
            self.failed_scrapes += 1
            return []
        disk = sum(path.stat().st_size for path in self._log_dir.glob("*.wal") if path.exists())
        for key, value in (
            ("wal_bytes", total(samples, "storecast_wal_bytes")),
            ("wal_disk_bytes", float(disk)),
            ("wal_unflushed_rows", total(samples, "storecast_wal_unflushed_rows")),
            ("hot_tier_bytes", total(samples, "storecast_hot_tier_bytes")),
        ):
            self.peaks[key] = max(self.peaks[key], value)
        return samples

    def finish(self) -> dict[str, Any]:
        self._stop.set()
        self._thread.join()
        elapsed = time.monotonic() - self._started
        last = self._sample() or scrape(self._url)

        def grown(name: str, **labels: str) -> int:
            return round(total(last, name, **labels) - total(self._first, name, **labels))

        flushes = grown("storecast_wal_flushes_total", outcome="stored")
        written = grown("storecast_records_written_total", category="production")
        memory = grown("storecast_hot_tier_reads_total", answered_from="memory")
        store = grown("storecast_hot_tier_reads_total", answered_from="store")
        return {
            "watch_seconds": round(elapsed, 2),
            "flushes": flushes,
            "failed_flushes": grown("storecast_wal_flushes_total", outcome="failed"),
            "flushes_per_s": round(flushes / elapsed, 2) if elapsed > 0 else None,
            "records_written": written,
            "records_per_flush": round(written / flushes, 1) if flushes else None,
            "answered_from_memory": memory,
            "answered_from_store": store,
            "memory_share": round(memory / (memory + store), 4) if memory + store else None,
            **{f"peak_{key}": int(value) for key, value in self.peaks.items()},
            "failed_scrapes": self.failed_scrapes,
        }


# -- the phases ----------------------------------------------------------------------------------


def get_plans(logs: list[ClientLog], plans: list[Plan], clients: int) -> list[Plan]:
    """Random acknowledged records of the PUT phases per client, each read alone ([t, t + 1 ms[)."""
    written = [
        (plan.equipment_id, plan.timestamp(index), fleet.marker(plan.marker_base, index))
        for log, plan in zip(logs, plans)
        if isinstance(plan, PutPlan)
        for index in log.acknowledged
    ]
    if not written:
        raise RuntimeError("recent shape: no PUT was acknowledged, there is nothing to read")
    return [
        GetPlan(tuple(random.Random(client).choices(written, k=GET_TARGETS_PER_CLIENT)), span_ms=PUT_STEP_MS)
        for client in range(clients)
    ]


def _phase(
    sut: SystemUnderTest, plans: list[Plan], config: FleetConfig, processes: int, watch: MetricsWatch | None
) -> fleet.PhaseResult:
    def run() -> fleet.PhaseResult:
        return fleet.run_phase(sut.endpoint, plans, config.seconds, processes, on_start=watch.start if watch else None)

    result = fleet.with_server_cpu(sut, run)
    if watch is not None:
        result.summary.update(watch.finish())
    return result


def run_recent(sut: SystemUnderTest, config: FleetConfig, new_watch: Callable[[], MetricsWatch] | None) -> dict[str, Any]:
    """The recent shape's phases on one system; `new_watch`: storecast's metrics, one watch per phase."""
    name = sut.endpoint.system
    result: dict[str, Any] = {}
    with sut.endpoint.client() as client:
        sut.seed(client)
    sut.settle()

    def watch() -> MetricsWatch | None:
        return new_watch() if new_watch is not None else None

    single_plans = fleet.put_plans(RECENT_SINGLE_PUT_ID, 1, config.seconds, RECENT_BASE_AGE_MS)
    single = _phase(sut, single_plans, config, 1, None)
    result["single_put"] = single.summary
    say(f"{name} recent: 1 client, 1-record PUTs: p50 {single.summary['p50_ms']} ms, p99 {single.summary['p99_ms']} ms")

    many_plans = fleet.put_plans(RECENT_PUT_ID_BASE, config.clients, config.seconds, RECENT_BASE_AGE_MS)
    many = _phase(sut, many_plans, config, config.processes, watch())
    result["put"] = many.summary
    say(
        f"{name} recent: {config.clients} clients, 1-record PUTs: {many.summary['requests_per_s']} PUT/s,"
        f" p50 {many.summary['p50_ms']} ms, p99 {many.summary['p99_ms']} ms, {many.summary['errors']} errors"
        + (
            f"; {many.summary['flushes_per_s']} flushes/s, {many.summary['records_per_flush']} records per flush,"
            f" log peak {many.summary['peak_wal_bytes']:,} B (gauge), {many.summary['peak_wal_disk_bytes']:,} B (disk)"
            if "flushes" in many.summary
            else ""
        )
    )
    logs, plans = single.logs + many.logs, single_plans + many_plans
    if name == "storecast":
        with sut.endpoint.client() as client:
            result["read_back"] = fleet.lost_records(client, logs, plans)
        read_back = result["read_back"]
        say(f"{name} recent: {read_back['acknowledged']} acknowledged records read back, {read_back['lost']} lost")
    sut.settle()

    for key, clients, processes in (("single_get", 1, 1), ("get", config.clients, config.processes)):
        summary = result[key] = _phase(sut, get_plans(logs, plans, clients), config, processes, watch()).summary
        say(
            f"{name} recent: {clients} client{'s' if clients > 1 else ''}, 1-record GETs: {summary['requests_per_s']} req/s,"
            f" p50 {summary['p50_ms']} ms, p99 {summary['p99_ms']} ms, {summary['errors']} errors"
            + (f"; {summary['memory_share']} answered from memory" if "memory_share" in summary else "")
        )
    if new_watch is not None:
        result["hot_tier_reads"] = _hot_tier_reads([result["single_get"], result["get"]])
    return result


def _hot_tier_reads(phases: list[dict[str, Any]]) -> dict[str, Any]:
    """The GET phases' reads by where storecast answered them. The share is over the timed GETs too
    (the counters start with the clock): a metric that counted none of them shows 0, not 1."""
    memory = sum(phase["answered_from_memory"] for phase in phases)
    store = sum(phase["answered_from_store"] for phase in phases)
    requests = sum(phase["requests"] for phase in phases)
    counted = max(memory + store, requests)
    return {"memory": memory, "store": store, "timed_gets": requests, "memory_share": memory / counted if counted else None}


# -- one system each ------------------------------------------------------------------------------


def bench_storecast(workdir: Path, config: FleetConfig) -> dict[str, Any]:
    """A fresh storecast with its metrics endpoint through the recent shape, then stopped."""
    seed = fleet.put_storecast_seed(warmup_dataset())
    metrics_port = free_port()
    target = start_storecast(workdir, max_records=100_000, extra_env={"STORECAST_METRICS_PORT": str(metrics_port)})
    say(f"storecast up (pid {target.server.pid}) at {target.server.base_url}, metrics on :{metrics_port}")
    store = target.server.data_dir
    sut = SystemUnderTest(
        fleet.storecast_endpoint(target.server.base_url), seed, lambda: fleet.settle_parts(store), target.server.pid, store
    )
    url = f"http://127.0.0.1:{metrics_port}/metrics"
    result: dict[str, Any] = {"pid": target.server.pid}
    try:
        # The log sits beside the store's directory by default (services/lib/config.py, LogSettings).
        result.update(run_recent(sut, config, lambda: MetricsWatch(url, store.parent / "wal")))
    finally:
        result["exit_code"] = target.server.stop()
        say(f"storecast stopped (exit {result['exit_code']})")
    return result


def bench_peer(peer_class: Callable[[Path], peers.Peer], workdir: Path, config: FleetConfig) -> dict[str, Any]:
    """A fresh peer through the recent shape, then stopped; its reads wait until its writes are searchable."""
    lines = line_protocol_bodies(warmup_dataset())
    peer: peers.Peer = peer_class(workdir)
    say(f"{peer.name} up (pid {peer.server.pid}) at {peer.server.base_url}")

    def seed(client: httpx.Client) -> None:
        for body in lines:
            peer.write(client, body)

    def settle() -> None:
        with httpx.Client(timeout=fleet.CLIENT_TIMEOUT_S) as client:
            peer.finish_ingest(client)
        wait_for_stable_disk(peer.server.data_dir, quiet_s=fleet.SETTLE_QUIET_S, timeout_s=fleet.SETTLE_TIMEOUT_S)

    sut = SystemUnderTest(fleet.Endpoint(fleet.peer_system(peer_class), peer.server.base_url), seed, settle, peer.server.pid)
    result: dict[str, Any] = {"pid": peer.server.pid}
    try:
        result.update(run_recent(sut, config, None))
    finally:
        result["exit_code"] = peer.server.stop()
        say(f"{peer.name} stopped (exit {result['exit_code']})")
    return result


def bench_floor(workdir: Path, config: FleetConfig) -> dict[str, Any]:
    """The recent shape's PUT phases against the request path's floor (stack_floor.py): storecast's
    gateway and services parts with nothing to do, the same generator, the same certificates."""
    port = free_port()
    script = Path(__file__).with_name("stack_floor.py")
    argv = [sys.executable, str(script), "--port", str(port), "--socket", str(workdir / "floor.sock")]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    server = launch("stack floor", argv, workdir, workdir / "stack-floor.log", f"https://127.0.0.1:{port}", env)
    endpoint = fleet.storecast_endpoint(server.base_url)
    wait_until(lambda: _answers(endpoint), server)
    say(f"stack floor up (pid {server.pid}) at {server.base_url}")
    sut = SystemUnderTest(endpoint, lambda _: None, lambda: None, server.pid)
    result: dict[str, Any] = {"pid": server.pid}
    try:
        single = _phase(sut, fleet.put_plans(RECENT_SINGLE_PUT_ID, 1, config.seconds, RECENT_BASE_AGE_MS), config, 1, None)
        result["single_put"] = single.summary
        many_plans = fleet.put_plans(RECENT_PUT_ID_BASE, config.clients, config.seconds, RECENT_BASE_AGE_MS)
        result["put"] = _phase(sut, many_plans, config, config.processes, None).summary
        say(
            f"stack floor: 1 client PUT p50 {single.summary['p50_ms']} ms; {config.clients} clients"
            f" {result['put']['requests_per_s']} PUT/s, p99 {result['put']['p99_ms']} ms"
        )
    finally:
        result["exit_code"] = server.stop()
    return result


def _answers(endpoint: fleet.Endpoint) -> bool:
    connection = endpoint.connection()
    try:
        return connection.exchange(connection.request("GET", "/"))[0] == 200
    finally:
        connection.close()


def config_json(config: FleetConfig) -> dict[str, Any]:
    return {
        "clients": config.clients,
        "processes": config.processes,
        "seconds": config.seconds,
        "put_records_per_request": 1,
        "put_timestamps": f"from {RECENT_BASE_AGE_MS // 60_000} min back, {PUT_STEP_MS} ms apart",
        "get_span_ms": PUT_STEP_MS,
        "warmup_records": RECENT_WARMUP_SECONDS * SEED_EQUIPMENTS,
        "warmup_step_ms": STEP_MS,
    }


def measure_hot_memory(series: int) -> dict[str, Any]:
    """hot_memory.py in a process of its own: the hot tier's bytes and RSS for `series` x 1 h x 13 attributes."""
    argv = [sys.executable, str(Path(__file__).with_name("hot_memory.py")), "--series", str(series)]
    completed = subprocess.run(argv, capture_output=True, text=True, timeout=HOT_MEMORY_TIMEOUT_S, check=False)
    if completed.returncode != 0:
        raise RuntimeError(f"hot_memory.py failed ({completed.returncode}):\n{completed.stderr[-3000:]}")
    result = json.loads(completed.stdout)
    if not isinstance(result, dict):
        raise RuntimeError(f"hot_memory.py printed no JSON object: {completed.stdout[:300]}")
    say(
        f"hot tier, {series:,} series x 1 h x {result['attributes']} attributes: {result['nbytes'] / 2**20:,.1f} MiB"
        f" counted (nbytes), {result['rss_growth_bytes'] / 2**20:,.1f} MiB RSS"
    )
    return result
