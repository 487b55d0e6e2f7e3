"""The fleet workload: many meters each sending one record at a time, and single records read back.

The same load generator drives storecast (HTTPS with the admin client
certificate), InfluxDB and VictoriaMetrics (plain HTTP, Influx line protocol
on /write and their query endpoints), and the engine's own point-read limit
runs in a process of its own (engine_point_reads.py). Per system, after an
untimed seed of `seed_seconds` x 16 meter-3p records at 1 s for the reads:

1. one client, 1-record PUTs back to back: p50/p99;
2. N clients, each PUTting 1 record at a time to its own equipment id with
   increasing timestamps: PUT/s, p50/p99, errors; for storecast, the engine
   inserts per second and the active parts (from the chDB directory, see
   parts.py), then every acknowledged record read back;
3. one client, 1-record GETs ([t, t + 1 s[ around one seeded record): p50/p99;
4. N clients doing the same: requests/s, p50/p99.

Python threads in one process share a GIL, so the N clients are threads
spread over several spawned processes, each thread holding one keep-alive
connection of the lean client in wire.py; requests are built as bytes, and every connection opened
with one untimed request, before the clock starts. Every response is checked
(status, and for GETs exactly one record with the expected value).

These phases are the "historic shape": records a day old written, records three
days old read. recent.py runs the same generator on records of the last hour.

Standalone, against a storecast already running (the dev PKI's admin
certificate; the chDB directory of that storecast for the engine counters):

    .venv/bin/python tests/bench/fleet.py --url https://127.0.0.1:PORT --store-dir DIR [--clients 16] [--seconds 10]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import queue
import random
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from multiprocessing.process import BaseProcess
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Event
from pathlib import Path
from typing import Any, overload
from urllib.parse import urlencode

import httpx
import msgspec
import peers
import report
from parts import StoreSample, sample_store
from processes import cpu_seconds, wait_for_stable_disk
from storecast_target import CLIENT, PKI_DIR, start_storecast
from timing import rate_summary
from wire import Connection, WireError
from workload import (
    ATTRIBUTES,
    EQUIPMENT_TYPE,
    MEASUREMENT,
    STEP_MS,
    Dataset,
    base_value,
    json_bodies,
    line_protocol_bodies,
    recent_aligned_start_ms,
)

# One site for the seeded records and the PUT phases' records; ids keep them apart.
FLEET_SITE_ID = 300
SEED_EQUIPMENTS = 16
SEED_SECONDS = {"full": 12_500, "quick": 3_125}  # x 16 equipments: 200k and 50k records
SINGLE_PUT_ID = 19_999
PUT_ID_BASE = 20_000  # client i of the N-client PUT phase writes equipment PUT_ID_BASE + i
WARMUP_ID_OFFSET = 50_000  # each PUT client's untimed first record goes to its id + this
# PUT records are 1 ms apart from a base taken when the phase is planned, so a later run
# against the same long-running storecast writes timestamps of its own.
PUT_STEP_MS = 1
PUT_BASE_AGE_MS = 86_400_000
# Each client gets phase seconds x min(MAX_CLIENT_RATE, max(MIN_CLIENT_RATE, GENERATOR_RATE / clients))
# requests prepared, a few hundred bytes each: above what any system measured here answered
# one client or 16 together. A client that runs out anyway is counted in exhausted_clients,
# and its phase's rate is then a lower bound.
MAX_CLIENT_RATE = 10_000
MIN_CLIENT_RATE = 1_500
GENERATOR_RATE = 24_000
GET_TARGETS_PER_CLIENT = 1_000
CHECKED_ATTRIBUTE = ATTRIBUTES[0]
CLIENT_TIMEOUT_S = 60.0
READY_TIMEOUT_S = 300.0
SAMPLE_EVERY_S = 1.0
# Settling: the seed's (and the PUT phases') merges and compactions done before timed reads.
SETTLE_QUIET_S = 6.0
SETTLE_TIMEOUT_S = 90.0


def say(message: str) -> None:
    print(f"[fleet {time.strftime('%H:%M:%S')}] {message}", flush=True)


@dataclass(frozen=True)
class FleetConfig:
    clients: int = 16
    processes: int = 4
    seconds: float = 10.0
    seed_seconds: int = SEED_SECONDS["full"]

    def as_json(self) -> dict[str, Any]:
        return {**asdict(self), "seed_records": self.seed_seconds * SEED_EQUIPMENTS, "put_records_per_request": 1}


def seed_dataset(config: FleetConfig) -> Dataset:
    return Dataset(FLEET_SITE_ID, tuple(range(1, SEED_EQUIPMENTS + 1)), recent_aligned_start_ms(days_ago=3), config.seed_seconds)


# -- what the clients send (built inside each worker process, before the clock) -------------------


@dataclass(frozen=True)
class Endpoint:
    """One system's address and how to connect; picklable, so each worker process opens its own clients."""

    system: str  # "storecast", "influxdb" or "victoria_metrics"
    base_url: str
    tls_files: tuple[str, str, str] | None = None  # (CA, client certificate, client key): storecast's mutual TLS

    def client(self) -> httpx.Client:
        verify: ssl.SSLContext | bool = True
        if self.tls_files is not None:
            ca, cert, key = self.tls_files
            verify = ssl.create_default_context(cafile=ca)
            verify.load_cert_chain(cert, key)
        content_type = self.content_type
        return httpx.Client(
            base_url=self.base_url, verify=verify, timeout=CLIENT_TIMEOUT_S, headers={"content-type": content_type}
        )

    def connection(self) -> Connection:
        """The timed phases' client: one keep-alive connection of the lean generator (wire.py)."""
        context: ssl.SSLContext | None = None
        if self.tls_files is not None:
            ca, cert, key = self.tls_files
            context = ssl.create_default_context(cafile=ca)
            context.load_cert_chain(cert, key)
        return Connection(self.base_url, context, CLIENT_TIMEOUT_S)

    @property
    def content_type(self) -> str:
        return "application/json" if self.system == "storecast" else "text/plain; charset=utf-8"

    @property
    def put_status(self) -> int:
        return 201 if self.system == "storecast" else 204


def storecast_endpoint(url: str, pki_dir: Path = PKI_DIR) -> Endpoint:
    files = (str(pki_dir / "ca.cert.pem"), str(pki_dir / f"{CLIENT}.cert.pem"), str(pki_dir / f"{CLIENT}.key.pem"))
    return Endpoint("storecast", url.rstrip("/"), files)


def marker(base: float, index: int) -> float:
    """The checked attribute's value of a PUT phase's record `index`: an integer, exact as a float in every system."""
    return base + index


def put_request(system: str, equipment_id: int, timestamp: int, checked_value: float) -> tuple[str, str, bytes]:
    """(method, path, body) of a 1-record write; attributes other than the checked one hold plausible constants."""
    values = {name: (checked_value if name == CHECKED_ATTRIBUTE else base_value(name)) for name in ATTRIBUTES}
    if system == "storecast":
        body = msgspec.json.encode({"values": [{"timestamp": timestamp, "id": equipment_id, **values}]})
        return "PUT", f"/v1/{FLEET_SITE_ID}/production/{EQUIPMENT_TYPE}", body
    # repr() keeps a '.', so no field reads as an integer (as workload.line_protocol_body does).
    fields = ",".join(f"{name}={float(value)!r}" for name, value in values.items())
    line = f"{MEASUREMENT},id={equipment_id} {fields} {timestamp}\n".encode()
    query = {"db": peers.INFLUX_DB, "precision": "ms"} if system == "influxdb" else {"precision": "ms"}
    return "POST", f"/write?{urlencode(query)}", line


def get_path(system: str, equipment_id: int, timestamp: int, span_ms: int = STEP_MS) -> str:
    """The path and query of a read of [timestamp, timestamp + span_ms[ of one equipment."""
    end = timestamp + span_ms
    if system == "storecast":
        return f"/v1/{FLEET_SITE_ID}/production/{EQUIPMENT_TYPE}/{equipment_id}?from={timestamp}&to={end}"
    if system == "influxdb":
        statement = f"SELECT * FROM {MEASUREMENT} WHERE id = '{equipment_id}' AND time >= {timestamp}ms AND time < {end}ms"
        return "/query?" + urlencode({"db": peers.INFLUX_DB, "epoch": "ms", "q": statement})
    # export's end is inclusive
    selector = f'{{__name__=~"{MEASUREMENT}_.*",id="{equipment_id}"}}'
    return "/api/v1/export?" + urlencode(
        {"match[]": selector, "start": f"{timestamp / 1000:.3f}", "end": f"{(end - 1) / 1000:.3f}"}
    )


def _storecast_value(body: bytes) -> tuple[int, Any]:
    decoded = msgspec.json.decode(body)
    if decoded.get("status_code") != 1000:
        raise ValueError(f"status_code {decoded.get('status_code')}: {decoded.get('status_message')}")
    results = decoded["results"]
    return len(results), results[0].get(CHECKED_ATTRIBUTE) if results else None


def _influxdb_value(body: bytes) -> tuple[int, Any]:
    result = msgspec.json.decode(body)["results"][0]
    if "error" in result:
        raise ValueError(result["error"])
    rows = [(series["columns"], row) for series in result.get("series", []) for row in series["values"]]
    return len(rows), rows[0][1][rows[0][0].index(CHECKED_ATTRIBUTE)] if rows else None


def _victoria_metrics_value(body: bytes) -> tuple[int, Any]:
    """One JSON line per attribute series; a record is there when all of them hold exactly one sample."""
    series = [msgspec.json.decode(line) for line in body.splitlines() if line.strip()]
    counts = {len(s["values"]) for s in series}
    if len(series) != len(ATTRIBUTES) or len(counts) != 1:
        return (0 if not series else -1), None
    checked = next((s["values"][0] for s in series if s["metric"]["__name__"] == f"{MEASUREMENT}_{CHECKED_ATTRIBUTE}"), None)
    return counts.pop(), checked


_VALUE_READERS: dict[str, Callable[[bytes], tuple[int, Any]]] = {
    "storecast": _storecast_value,
    "influxdb": _influxdb_value,
    "victoria_metrics": _victoria_metrics_value,
}


def check_get(system: str, body: bytes, expected: float) -> str | None:
    """None when the body holds exactly one record whose checked attribute is `expected`, else what is wrong."""
    try:
        records, value = _VALUE_READERS[system](body)
    except (ValueError, KeyError, IndexError, TypeError, msgspec.DecodeError) as error:
        return f"unreadable body ({error!r}): {body[:200]!r}"
    if records != 1:
        return f"{records} records: {body[:200]!r}"
    if value is None or float(value) != expected:
        return f"{CHECKED_ATTRIBUTE}={value!r}, expected {expected!r}"
    return None


@dataclass(frozen=True)
class PutPlan:
    """One client's PUTs: records index 0, 1, ... of one equipment id, PUT_STEP_MS apart from base_ms."""

    equipment_id: int
    base_ms: int
    count: int
    marker_base: float

    def timestamp(self, index: int) -> int:
        return self.base_ms + index * PUT_STEP_MS


@dataclass(frozen=True)
class GetPlan:
    """One client's GETs, cycled: (equipment id, timestamp, expected value of the checked attribute),
    each a read of [timestamp, timestamp + span_ms[ holding exactly that record."""

    targets: tuple[tuple[int, int, float], ...]
    span_ms: int = STEP_MS


Plan = PutPlan | GetPlan


@dataclass
class ClientLog:
    """What one client thread saw; sent back to the parent through a queue, so plain data only."""

    plan_index: int = -1  # the plan's position in the phase, to pair logs with plans again
    latencies_ms: list[float] = field(default_factory=list)
    ok: int = 0
    errors: int = 0
    first_errors: list[str] = field(default_factory=list)
    acknowledged: list[int] = field(default_factory=list)  # PUT record indexes that got the success status
    exhausted: bool = False  # ran out of prepared requests before the deadline
    started: float = 0.0
    finished: float = 0.0

    def error(self, text: str) -> None:
        self.errors += 1
        if len(self.first_errors) < 5:
            self.first_errors.append(text[:300])


@dataclass(frozen=True)
class WorkerSpec:
    endpoint: Endpoint
    plans: tuple[tuple[int, Plan], ...]  # (index in the phase, plan)
    seconds: float


PutRequests = list[bytes]
GetRequests = list[tuple[bytes, float]]


@overload
def prepare(endpoint: Endpoint, connection: Connection, plan: PutPlan) -> PutRequests: ...
@overload
def prepare(endpoint: Endpoint, connection: Connection, plan: GetPlan) -> GetRequests: ...
def prepare(endpoint: Endpoint, connection: Connection, plan: Plan) -> PutRequests | GetRequests:
    """Every request of a client, as the bytes sent, built before the clock starts."""
    if isinstance(plan, PutPlan):
        requests = (
            put_request(endpoint.system, plan.equipment_id, plan.timestamp(i), marker(plan.marker_base, i))
            for i in range(plan.count)
        )
        return [connection.request(method, path, body, endpoint.content_type) for method, path, body in requests]
    return [
        (connection.request("GET", get_path(endpoint.system, equipment_id, timestamp, plan.span_ms)), expected)
        for equipment_id, timestamp, expected in plan.targets
    ]


def _put_loop(connection: Connection, endpoint: Endpoint, requests: PutRequests, deadline: float, log: ClientLog) -> None:
    log.exhausted = True
    for index, request in enumerate(requests):
        if time.monotonic() >= deadline:
            log.exhausted = False
            break
        started = time.perf_counter()
        try:
            status, body = connection.exchange(request)
        except (OSError, WireError) as error:  # a transport failure is an error to count, not a crash
            log.error(f"PUT: {error!r}")
            continue
        log.latencies_ms.append((time.perf_counter() - started) * 1000)
        if status == endpoint.put_status:
            log.ok += 1
            log.acknowledged.append(index)
        else:
            log.error(f"PUT -> {status}: {body[:200]!r}")


def _get_loop(connection: Connection, endpoint: Endpoint, requests: GetRequests, deadline: float, log: ClientLog) -> None:
    index = 0
    while time.monotonic() < deadline:
        request, expected = requests[index % len(requests)]
        index += 1
        started = time.perf_counter()
        try:
            status, body = connection.exchange(request)
        except (OSError, WireError) as error:
            log.error(f"GET: {error!r}")
            continue
        log.latencies_ms.append((time.perf_counter() - started) * 1000)
        problem = f"-> {status}: {body[:200]!r}" if status != 200 else check_get(endpoint.system, body, expected)
        if problem is None:
            log.ok += 1
        else:
            log.error(f"GET {request.split(b' ', 2)[1][:120]!r}: {problem}")


def _warm_up(connection: Connection, endpoint: Endpoint, plan: Plan) -> None:
    """One untimed request: opens the keep-alive (TLS) connection; a PUT's record goes to an id no check reads."""
    if isinstance(plan, PutPlan):
        method, path, body = put_request(endpoint.system, plan.equipment_id + WARMUP_ID_OFFSET, plan.base_ms, plan.marker_base)
        status, answer = connection.exchange(connection.request(method, path, body, endpoint.content_type))
        expected = endpoint.put_status
    else:
        path = get_path(endpoint.system, *plan.targets[0][:2], plan.span_ms)
        status, answer = connection.exchange(connection.request("GET", path))
        expected = 200
    if status != expected:
        raise RuntimeError(f"warm-up -> {status}: {answer[:300]!r}")


def _client_thread(
    spec: WorkerSpec, plan: Plan, ready: threading.Barrier, go: threading.Event, deadline: list[float], log: ClientLog
) -> None:
    connection: Connection | None = spec.endpoint.connection()
    assert connection is not None
    put_requests: PutRequests = []
    get_requests: GetRequests = []
    try:
        if isinstance(plan, PutPlan):
            put_requests = prepare(spec.endpoint, connection, plan)
        else:
            get_requests = prepare(spec.endpoint, connection, plan)
        _warm_up(connection, spec.endpoint, plan)
    except Exception as error:  # reported with the phase's errors; the other clients still run
        log.error(f"before the clock: {error!r}")
        connection.close()
        connection = None
    finally:
        ready.wait()
    go.wait()
    if connection is None:
        return
    try:
        log.started = time.monotonic()
        if isinstance(plan, PutPlan):
            _put_loop(connection, spec.endpoint, put_requests, deadline[0], log)
        else:
            _get_loop(connection, spec.endpoint, get_requests, deadline[0], log)
    except Exception as error:  # a bug in a checker must show in the figures, not vanish with the thread
        log.error(f"client stopped: {error!r}")
    finally:
        log.finished = time.monotonic()
        connection.close()


def _worker_process(spec: WorkerSpec, go: Event, messages: Queue[tuple[str, Any]]) -> None:
    """One generator process: a thread per plan. Says ("ready", None) once every client is prepared,
    starts on `go` (set when every process is ready), and ends with ("done", its logs and CPU time)."""
    logs = [ClientLog(plan_index=index) for index, _ in spec.plans]
    ready = threading.Barrier(len(spec.plans) + 1)
    local_go = threading.Event()
    deadline = [0.0]
    threads = [
        threading.Thread(target=_client_thread, args=(spec, plan, ready, local_go, deadline, log), daemon=True)
        for (_, plan), log in zip(spec.plans, logs)
    ]
    for thread in threads:
        thread.start()
    ready.wait()
    messages.put(("ready", None))
    if not go.wait(timeout=READY_TIMEOUT_S):
        return  # the parent gave up on this phase; daemon threads end with the process
    cpu_before = os.times()
    deadline[0] = time.monotonic() + spec.seconds
    local_go.set()
    for thread in threads:
        thread.join()
    cpu_after = os.times()
    cpu = (cpu_after.user - cpu_before.user) + (cpu_after.system - cpu_before.system)
    messages.put(("done", {"logs": [asdict(log) for log in logs], "cpu_s": cpu}))


# -- one phase: spawn the generator, collect, summarise ------------------------------------------


@dataclass(frozen=True)
class PhaseResult:
    summary: dict[str, Any]
    logs: list[ClientLog]


def _summary(logs: list[ClientLog], generator_cpu_s: float) -> dict[str, Any]:
    ran = [log for log in logs if log.finished > 0]
    elapsed = (max(log.finished for log in ran) - min(log.started for log in ran)) if ran else 0.0
    latencies = [latency for log in logs for latency in log.latencies_ms]
    first_errors = [error for log in logs for error in log.first_errors]
    return {
        **rate_summary(len(logs), elapsed, latencies, sum(log.ok for log in logs), sum(log.errors for log in logs), first_errors),
        # A client that used up its prepared requests stopped early: the rate is then a lower bound.
        "exhausted_clients": sum(log.exhausted for log in logs),
        "generator_cpu_s": round(generator_cpu_s, 2),
    }


def run_phase(
    endpoint: Endpoint,
    plans: list[Plan],
    seconds: float,
    processes: int,
    on_tick: Callable[[], None] | None = None,
    on_start: Callable[[], None] | None = None,
) -> PhaseResult:
    """Spread the plans (one per client) over `processes` spawned processes and run them for `seconds`;
    `on_start` runs as the clock starts (every client prepared), `on_tick` about every SAMPLE_EVERY_S."""
    context = multiprocessing.get_context("spawn")  # no fork of a process that may hold engine or client threads
    indexed = list(enumerate(plans))
    groups = [tuple(indexed[i :: max(1, processes)]) for i in range(max(1, processes))]
    groups = [group for group in groups if group]
    go = context.Event()
    messages = context.Queue()
    workers = [
        context.Process(target=_worker_process, args=(WorkerSpec(endpoint, group, seconds), go, messages), daemon=True)
        for group in groups
    ]
    for worker in workers:
        worker.start()
    try:
        _await(messages, workers, "ready", time.monotonic() + READY_TIMEOUT_S)
        if on_start is not None:
            on_start()
        go.set()
        collected = _await(messages, workers, "done", time.monotonic() + seconds + 2 * CLIENT_TIMEOUT_S + 30, on_tick)
    except BaseException:
        for worker in workers:
            worker.terminate()  # only the generator processes this phase started
        raise
    finally:
        for worker in workers:
            worker.join(timeout=30)
            if worker.is_alive():
                worker.kill()
    logs = sorted((ClientLog(**log) for process in collected for log in process["logs"]), key=lambda log: log.plan_index)
    return PhaseResult(_summary(logs, sum(r["cpu_s"] for r in collected)), logs)


def _await(
    messages: Queue[tuple[str, Any]],
    workers: Sequence[BaseProcess],
    kind: str,
    deadline: float,
    on_tick: Callable[[], None] | None = None,
) -> list[dict[str, Any]]:
    """One `kind` message per worker; fails early if a worker dies first, or at the deadline."""
    payloads: list[dict[str, Any]] = []
    while len(payloads) < len(workers):
        try:
            got, payload = messages.get(timeout=SAMPLE_EVERY_S)
        except queue.Empty:
            if on_tick is not None:
                on_tick()
            if time.monotonic() > deadline:
                raise RuntimeError(f"fleet: generator processes not {kind} in time") from None
            if any(worker.exitcode not in (None, 0) for worker in workers) or all(not worker.is_alive() for worker in workers):
                raise RuntimeError(f"fleet: generator processes exited with {[w.exitcode for w in workers]}") from None
            continue
        if got != kind:
            raise RuntimeError(f"fleet: expected {kind!r} from a generator process, got {got!r}")
        payloads.append(payload)
    return payloads


def _rate_cap(clients: int) -> int:
    return min(MAX_CLIENT_RATE, max(MIN_CLIENT_RATE, GENERATOR_RATE // max(clients, 1)))


def put_plans(first_id: int, clients: int, seconds: float, base_age_ms: int = PUT_BASE_AGE_MS) -> list[Plan]:
    """Fresh records for `clients` equipment ids from first_id on, timestamps from a base `base_age_ms` back."""
    base_ms = int(time.time() * 1000) - base_age_ms
    # Whole numbers unique to this run (up to 2^53, exact in a double), so a stale record from an earlier run never passes.
    marker_base = float(int(time.time()) % 1_000_000 * 1_000_000)
    count = int(seconds * _rate_cap(clients)) + 1
    return [PutPlan(first_id + index, base_ms, count, marker_base) for index in range(clients)]


def get_plans(dataset: Dataset, clients: int) -> list[Plan]:
    """Random seeded records per client: each read's 1 s range holds exactly one of them."""
    timestamps, ids, values = (dataset.columns[name] for name in ("timestamp", "id", CHECKED_ATTRIBUTE))
    plans: list[Plan] = []
    for client in range(clients):
        chooser = random.Random(client)
        picks = [chooser.randrange(dataset.records) for _ in range(GET_TARGETS_PER_CLIENT)]
        plans.append(GetPlan(tuple((int(ids[i]), int(timestamps[i]), float(values[i])) for i in picks)))
    return plans


# -- storecast's own checks: acknowledged records read back, engine inserts and parts ------------


def lost_records(client: httpx.Client, logs: list[ClientLog], plans: list[Plan]) -> dict[str, Any]:
    """Read back every acknowledged record (GET by range, following next_from on 206); count the missing or wrong."""
    acknowledged = lost = 0
    first_lost: list[str] = []
    for log, plan in zip(logs, plans):
        assert isinstance(plan, PutPlan)
        if not log.acknowledged:
            continue
        stored = _stored_markers(
            client, plan.equipment_id, plan.timestamp(min(log.acknowledged)), plan.timestamp(max(log.acknowledged)) + 1
        )
        for index in log.acknowledged:
            acknowledged += 1
            if stored.get(plan.timestamp(index)) != marker(plan.marker_base, index):
                lost += 1
                if len(first_lost) < 5:
                    first_lost.append(
                        f"id {plan.equipment_id} timestamp {plan.timestamp(index)}: {stored.get(plan.timestamp(index))!r}"
                    )
    return {"acknowledged": acknowledged, "lost": lost, "first_lost": first_lost}


def _stored_markers(client: httpx.Client, equipment_id: int, start: int, end: int) -> dict[int, float | None]:
    stored: dict[int, float | None] = {}
    path = f"/v1/{FLEET_SITE_ID}/production/{EQUIPMENT_TYPE}/{equipment_id}"
    while True:
        response = client.get(path, params={"from": start, "to": end})
        if response.status_code not in (200, 206):
            raise RuntimeError(f"read-back GET {response.request.url} -> {response.status_code}: {response.text[:300]}")
        body = msgspec.json.decode(response.content)
        for record in body["results"]:
            value = record.get(CHECKED_ATTRIBUTE)
            stored[int(record["timestamp"])] = None if value is None else float(value)
        if response.status_code == 200:
            return stored
        start = int(body["next_from"])


class PartsWatch:
    """Samples of a chDB directory's parts during a phase: the most active parts seen."""

    def __init__(self, store: Path) -> None:
        self.store = store
        self.before = sample_store(store)
        self.max_active = self.before.total_active_parts

    def tick(self) -> None:
        self.max_active = max(self.max_active, sample_store(self.store).total_active_parts)

    def finish(self, elapsed_s: float) -> dict[str, Any]:
        after: StoreSample = sample_store(self.store)
        inserts = after.inserts_since(self.before)
        self.max_active = max(self.max_active, after.total_active_parts)
        return {
            "engine_inserts": inserts,
            "engine_inserts_per_s": round(inserts / elapsed_s, 1) if elapsed_s > 0 else None,
            "active_parts_before": self.before.total_active_parts,
            "active_parts_after": after.total_active_parts,
            "active_parts_max": self.max_active,
            "active_parts_by_table_after": {table: count for table, count in after.active_parts.items() if count},
        }


def settle_parts(store: Path, quiet_s: float = SETTLE_QUIET_S / 2, timeout_s: float = SETTLE_TIMEOUT_S) -> int:
    """Wait until the active part count holds still (the merges are done); the count."""
    deadline = time.monotonic() + timeout_s
    count, since = sample_store(store).total_active_parts, time.monotonic()
    while time.monotonic() < deadline and time.monotonic() - since < quiet_s:
        time.sleep(0.5)
        current = sample_store(store).total_active_parts
        if current != count:
            count, since = current, time.monotonic()
    return count


# -- one system, all phases ----------------------------------------------------------------------


@dataclass(frozen=True)
class SystemUnderTest:
    endpoint: Endpoint
    seed: Callable[[httpx.Client], None]
    settle: Callable[[], object]  # waits until the store holds still; what it returns is not used
    server_pid: int | None = None
    store_dir: Path | None = None  # storecast's chDB directory: engine inserts and parts


def with_server_cpu(sut: SystemUnderTest, phase: Callable[[], PhaseResult]) -> PhaseResult:
    before = cpu_seconds(sut.server_pid) if sut.server_pid else None
    result = phase()
    if before is not None and sut.server_pid:
        result.summary["server_cpu_s"] = round(cpu_seconds(sut.server_pid) - before, 2)
    return result


def run_workload(sut: SystemUnderTest, dataset: Dataset, config: FleetConfig) -> dict[str, Any]:
    name = sut.endpoint.system
    result: dict[str, Any] = {}
    with sut.endpoint.client() as client:
        started = time.perf_counter()
        sut.seed(client)
        result["seed"] = {"records": dataset.records, "seconds": round(time.perf_counter() - started, 2)}
    sut.settle()

    single_plans = put_plans(SINGLE_PUT_ID, 1, config.seconds)
    single = with_server_cpu(sut, lambda: run_phase(sut.endpoint, single_plans, config.seconds, 1))
    result["single_put"] = single.summary
    say(f"{name}: 1 client, 1-record PUTs: p50 {single.summary['p50_ms']} ms, p99 {single.summary['p99_ms']} ms")

    many_plans = put_plans(PUT_ID_BASE, config.clients, config.seconds)
    watch = PartsWatch(sut.store_dir) if sut.store_dir is not None else None
    many = with_server_cpu(
        sut, lambda: run_phase(sut.endpoint, many_plans, config.seconds, config.processes, watch.tick if watch else None)
    )
    result["put"] = many.summary
    if watch is not None:
        result["put"].update(watch.finish(many.summary["seconds"]))
    say(
        f"{name}: {config.clients} clients, 1-record PUTs: {many.summary['requests_per_s']} PUT/s,"
        f" p50 {many.summary['p50_ms']} ms,"
        f" p99 {many.summary['p99_ms']} ms, {many.summary['errors']} errors"
        + (
            f", {result['put']['engine_inserts_per_s']} engine inserts/s, {result['put']['active_parts_after']} active parts"
            if watch
            else ""
        )
    )
    if name == "storecast":
        with sut.endpoint.client() as client:
            result["read_back"] = lost_records(client, single.logs + many.logs, single_plans + many_plans)
        say(f"{name}: {result['read_back']['acknowledged']} acknowledged records read back, {result['read_back']['lost']} lost")
    sut.settle()

    for key, clients, processes in (("single_get", 1, 1), ("get", config.clients, config.processes)):

        def get_phase(c: int = clients, p: int = processes) -> PhaseResult:
            return run_phase(sut.endpoint, get_plans(dataset, c), config.seconds, p)

        phase = with_server_cpu(sut, get_phase)
        result[key] = phase.summary
        say(
            f"{name}: {clients} client{'s' if clients > 1 else ''}, 1-record GETs: {phase.summary['requests_per_s']} req/s,"
            f" p50 {phase.summary['p50_ms']} ms,"
            f" p99 {phase.summary['p99_ms']} ms, {phase.summary['errors']} errors"
        )
    return result


def put_storecast_seed(dataset: Dataset) -> Callable[[httpx.Client], None]:
    bodies = json_bodies(dataset)  # before the server starts, as the bench does for its bulk phase

    def seed(client: httpx.Client) -> None:
        for body in bodies:
            response = client.put(f"/v1/{dataset.site_id}/production/{EQUIPMENT_TYPE}", content=body)
            if response.status_code != 201:
                raise RuntimeError(f"seed PUT -> {response.status_code}: {response.text[:300]}")

    return seed


def bench_storecast(workdir: Path, dataset: Dataset, config: FleetConfig) -> dict[str, Any]:
    """A fresh storecast (as run.py starts it) through every phase, then stopped."""
    seed = put_storecast_seed(dataset)
    target = start_storecast(workdir, max_records=100_000)
    say(f"storecast up (pid {target.server.pid}) at {target.server.base_url}")
    store = target.server.data_dir
    sut = SystemUnderTest(storecast_endpoint(target.server.base_url), seed, lambda: settle_parts(store), target.server.pid, store)
    result: dict[str, Any] = {"pid": target.server.pid}
    try:
        result.update(run_workload(sut, dataset, config))
    finally:
        result["exit_code"] = target.server.stop()
        say(f"storecast stopped (exit {result['exit_code']})")
    return result


def peer_system(peer_class: Callable[[Path], peers.Peer]) -> str:
    """The Endpoint system name of a peer class."""
    return "influxdb" if peer_class is peers.InfluxDB else "victoria_metrics"


def bench_peer(peer_class: Callable[[Path], peers.Peer], workdir: Path, dataset: Dataset, config: FleetConfig) -> dict[str, Any]:
    """A fresh peer through every phase, then stopped."""
    lines = line_protocol_bodies(dataset)
    peer: peers.Peer = peer_class(workdir)
    say(f"{peer.name} up (pid {peer.server.pid}) at {peer.server.base_url}")

    def seed(client: httpx.Client) -> None:
        for body in lines:
            peer.write(client, body)
        peer.finish_ingest(client)

    def settle() -> None:
        wait_for_stable_disk(peer.server.data_dir, quiet_s=SETTLE_QUIET_S, timeout_s=SETTLE_TIMEOUT_S)

    sut = SystemUnderTest(Endpoint(peer_system(peer_class), peer.server.base_url), seed, settle, peer.server.pid)
    result: dict[str, Any] = {"pid": peer.server.pid}
    try:
        result.update(run_workload(sut, dataset, config))
    finally:
        result["exit_code"] = peer.server.stop()
        say(f"{peer.name} stopped (exit {result['exit_code']})")
    return result


def bench_engine(workdir: Path, dataset: Dataset, config: FleetConfig) -> dict[str, Any]:
    """The engine's point-read limit, in a process of its own (engine_point_reads.py)."""
    store = workdir / "engine-point-reads" / "store"
    store.parent.mkdir(parents=True)
    argv = [
        sys.executable, str(Path(__file__).with_name("engine_point_reads.py")),
        "--store", str(store),
        "--site-id", str(dataset.site_id),
        "--equipments", *map(str, dataset.equipment_ids),
        "--start-ms", str(dataset.start_ms),
        "--seconds-of-data", str(dataset.seconds),
        "--clients", str(config.clients),
        "--seconds", str(config.seconds),
    ]  # fmt: skip
    completed = subprocess.run(argv, capture_output=True, text=True, timeout=1800, check=False)
    if completed.returncode != 0:
        raise RuntimeError(f"engine_point_reads.py failed ({completed.returncode}):\n{completed.stderr[-3000:]}")
    result = json.loads(completed.stdout)
    if not isinstance(result, dict):
        raise RuntimeError(f"engine_point_reads.py printed no JSON object: {completed.stdout[:300]}")
    say(
        f"engine: {config.clients} threads, point reads: {result['get']['requests_per_s']} reads/s;"
        f" 1 thread p50 {result['single_get']['p50_ms']} ms"
    )
    return result


# -- standalone: against a storecast already running ----------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", required=True, help="storecast's HTTPS base URL, e.g. https://127.0.0.1:9443")
    parser.add_argument("--store-dir", type=Path, default=None, help="that storecast's chDB directory (engine inserts and parts)")
    parser.add_argument("--pki", type=Path, default=PKI_DIR, help="directory with ca.cert.pem and the admin client certificate")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--processes", type=int, default=4, help="generator processes the clients are spread over")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each phase")
    parser.add_argument("--seed-seconds", type=int, default=SEED_SECONDS["full"], help="seeded seconds per equipment (x 16)")
    parser.add_argument("--pid", type=int, default=None, help="storecast's process id, to report its CPU time per phase")
    parser.add_argument("--engine", action="store_true", help="also measure the engine's point-read limit (a temporary chDB)")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures to this file")
    args = parser.parse_args(argv)
    if args.clients < 1 or args.processes < 1 or args.seconds <= 0:
        parser.error("--clients, --processes and --seconds must be positive")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    config = FleetConfig(args.clients, args.processes, args.seconds, args.seed_seconds)
    dataset = seed_dataset(config)
    store = args.store_dir.resolve() if args.store_dir else None
    if store is not None and not any(store.glob("metadata/*")):
        raise SystemExit(f"{store} does not look like a chDB directory (no metadata/)")
    seed = put_storecast_seed(dataset)
    settle = (lambda: settle_parts(store)) if store is not None else (lambda: None)
    sut = SystemUnderTest(storecast_endpoint(args.url, args.pki), seed, settle, args.pid, store)
    fleet: dict[str, Any] = {"config": config.as_json(), "storecast": run_workload(sut, dataset, config)}
    if args.engine:
        with tempfile.TemporaryDirectory(prefix="storecast-fleet-engine-") as workdir:
            fleet["engine"] = bench_engine(Path(workdir), dataset, config)
    if args.json is not None:
        args.json.write_text(json.dumps(fleet, indent=2) + "\n")
    print()
    print(report.fleet_table(fleet))
    return 0


if __name__ == "__main__":
    sys.exit(main())
