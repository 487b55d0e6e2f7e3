"""Recent writes: PUTs acknowledged from the write-ahead log, recent reads answered from memory.

Every read sees every acknowledged write at once; answers from memory are the
engine's answers for the same records; nothing acknowledged is lost to kill -9.
"""

from __future__ import annotations

import os
import random
import re
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule, run_state_machine_as_test

from tests.conftest import Pki, Storecast, free_port, ok, put, start_storecast, stop_storecast, wait_until_serving
from tests.helpers import JsonObject, admin_client, gateway_env, spawn, wait_for_health

NOW_MS = (int(time.time()) - 600) * 1000  # recent: inside the hot tier's window
BATTERY = "battery"  # float attributes and an unsigned one (state)


def _from_memory(metrics_port: int) -> float:
    text = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10).text
    found = re.search(r'storecast_hot_tier_reads_total\{answered_from="memory",kind="production"\} (\S+)', text)
    return float(found[1]) if found else 0.0


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory, test_pki: Pki) -> Iterator[tuple[Storecast, Storecast, int]]:
    """The same writes to a storecast answering from memory and to one reading its engine only."""
    metrics_port = free_port()
    hot = start_storecast(tmp_path_factory.mktemp("hot"), test_pki, {"STORECAST_METRICS_PORT": str(metrics_port)})
    cold = start_storecast(tmp_path_factory.mktemp("cold"), test_pki, {"STORECAST_LOG": "0"})
    yield hot, cold, metrics_port
    stop_storecast(hot)
    stop_storecast(cold)


def _records(rng: random.Random, count: int, ids: int) -> list[JsonObject]:
    records: list[JsonObject] = []
    for _ in range(count):
        record: JsonObject = {"timestamp": NOW_MS + rng.randrange(0, 120_000), "id": rng.randrange(1, ids + 1)}
        for name in ("soc", "p", "q"):
            if rng.random() < 0.8:
                record[name] = rng.choice([rng.uniform(-1e4, 1e4), float(rng.randrange(-50, 50)), rng.uniform(-1e-6, 1e-6)])
        if rng.random() < 0.8:
            record["state"] = rng.randrange(0, 5)
        records.append(record)
    return records


def _same(hot: JsonObject, cold: JsonObject, path: str) -> None:
    if "agg=avg" not in path and "agg=sum" not in path:
        assert hot == cold, path
        return
    assert len(hot["results"]) == len(cold["results"]), path
    for mine, theirs in zip(hot["results"], cold["results"]):
        assert mine.keys() == theirs.keys()
        for key, value in mine.items():
            other = theirs[key]
            if isinstance(value, float) and isinstance(other, float):
                assert value == pytest.approx(other, rel=1e-12, abs=1e-300), (path, key)
            else:
                assert value == other, (path, key)


def test_answers_from_memory_are_the_engines(pair: tuple[Storecast, Storecast, int], site: int) -> None:
    hot, cold, metrics_port = pair
    rng = random.Random(site)
    with hot.client() as hot_client, cold.client() as cold_client:
        for _ in range(6):  # replacements of the same keys included
            body = _records(rng, 200, ids=3)
            ok(put(hot_client, f"/v1/{site}/production/{BATTERY}", body), 201)
            ok(put(cold_client, f"/v1/{site}/production/{BATTERY}", body), 201)
        reads = [f"/v1/{site}/production/{BATTERY}/{i}?from={NOW_MS}&to={NOW_MS + 120_000}" for i in (1, 2, 3)]
        reads += [f"{reads[0]}&agg={f}&period={p}" for f in ("min", "max", "avg") for p in ("1s", "7s", "1m")]
        # /ext/v1's aggregations too, every one of which memory answers.
        ext = f"/ext/v1/{site}/production/{BATTERY}/1?from={NOW_MS}&to={NOW_MS + 120_000}"
        reads += [f"{ext}&agg={f}&period={p}" for f in ("sum", "count", "first", "last") for p in ("1s", "7s")]
        reads += [f"/v1/{site}/production/{BATTERY}/2?from={NOW_MS + 30_000}&to={NOW_MS + 30_001}"]
        hot_client.get(reads[0])  # the first read of a series flushes it; later ones are answered from memory
        before = _from_memory(metrics_port)
        for path in reads:
            answer = hot_client.get(path)
            expected = cold_client.get(path)
            assert answer.status_code == expected.status_code, answer.text
            _same(answer.json(), expected.json(), path)
        assert _from_memory(metrics_port) - before == len(reads)
        # A range reaching back before what memory holds is the engine's, and the same.
        older = f"/v1/{site}/production/{BATTERY}/1?from={NOW_MS - 3_600_000}&to={NOW_MS + 120_000}"
        _same(hot_client.get(older).json(), cold_client.get(older).json(), older)


def test_a_read_sees_an_unflushed_write_at_once(tmp_path: Path, test_pki: Pki, site: int) -> None:
    instance = start_storecast(tmp_path, test_pki, {"STORECAST_FLUSH_INTERVAL": "3600"})
    try:
        with instance.client() as client:
            for n in range(3):
                ok(put(client, f"/v1/{site}/production/meter", [{"timestamp": NOW_MS + n, "id": 5, "p": float(n)}]), 201)
                body = ok(client.get(f"/v1/{site}/production/meter/5", params={"from": NOW_MS, "to": NOW_MS + 10}))
                assert [r["p"] for r in body["results"]] == [float(i) for i in range(n + 1)]
            # An old record (never kept in memory) is read from the engine, after a flush the read asks for.
            ok(put(client, f"/v1/{site}/production/meter", [{"timestamp": 1_000, "id": 5, "p": 7.0}]), 201)
            assert ok(client.get(f"/v1/{site}/production/meter/5", params={"from": 0, "to": 2_000}))["results"][0]["p"] == 7.0
    finally:
        stop_storecast(instance)


def _kill(instance: Storecast) -> None:
    instance.process.send_signal(signal.SIGKILL)
    instance.process.wait(timeout=30)


@pytest.mark.parametrize("cycles", [2])
def test_nothing_acknowledged_is_lost_to_kill_9_under_load(tmp_path: Path, test_pki: Pki, site: int, cycles: int) -> None:
    acknowledged: dict[int, float] = {}
    lock = threading.Lock()
    counter = iter(range(10**9))
    for _ in range(cycles):
        instance = start_storecast(tmp_path, test_pki, {"STORECAST_FLUSH_INTERVAL": "0.3"})
        stop = threading.Event()

        def writer(instance: Storecast = instance, stop: threading.Event = stop) -> None:
            with instance.client() as client:
                while not stop.is_set():
                    with lock:
                        n = next(counter)
                    record = {"timestamp": NOW_MS + n, "id": 1, "p": float(n)}
                    try:
                        response = put(client, f"/v1/{site}/production/meter", [record])
                    except httpx.HTTPError:
                        return
                    if response.status_code == 201:
                        with lock:
                            acknowledged[NOW_MS + n] = float(n)

        threads = [threading.Thread(target=writer) for _ in range(4)]
        for thread in threads:
            thread.start()
        time.sleep(2)
        _kill(instance)
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
    instance = start_storecast(tmp_path, test_pki)
    try:
        with instance.client() as client:
            results: list[JsonObject] = []
            start = NOW_MS
            while True:
                response = client.get(f"/v1/{site}/production/meter/1", params={"from": start, "to": NOW_MS + 10**9})
                body = ok(response, response.status_code)
                results += body["results"]
                if response.status_code == 200:
                    break
                start = body["next_from"]
        stored = {r["timestamp"]: r["p"] for r in results}
        assert len(acknowledged) > 50
        assert {t: stored.get(t) for t in acknowledged} == acknowledged
    finally:
        stop_storecast(instance)


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


_REDUCE: dict[str, Callable[[list[float]], float]] = {"min": min, "max": max, "avg": _mean}


class _RecentWrites(RuleBasedStateMachine):
    """PUTs (replacing keys), reads raw and aggregated, flushes, restarts and kill -9, against a dict."""

    directory: Path
    pki: Pki

    def __init__(self) -> None:
        super().__init__()
        self.model: dict[tuple[int, int], float | None] = {}
        self.instance: Storecast | None = None
        self.site = random.randrange(10**6, 4 * 10**9)

    @initialize()
    def start(self) -> None:
        self.instance = start_storecast(self.directory, self.pki, {"STORECAST_FLUSH_INTERVAL": "0.5"})

    def _client(self) -> httpx.Client:
        assert self.instance is not None
        return self.instance.client()

    @rule(
        records=st.lists(
            st.tuples(st.integers(1, 2), st.integers(0, 40), st.one_of(st.none(), st.floats(-1e6, 1e6))), min_size=1, max_size=8
        )
    )
    def put_records(self, records: list[tuple[int, int, float | None]]) -> None:
        body = [{"timestamp": NOW_MS + 1000 * t, "id": i, "p": p} for i, t, p in records]
        with self._client() as client:
            ok(put(client, f"/v1/{self.site}/production/meter", body), 201)
        for i, t, p in records:
            self.model[(i, t)] = p

    @rule(record_id=st.integers(1, 2), low=st.integers(0, 40), length=st.integers(1, 41))
    def read_raw(self, record_id: int, low: int, length: int) -> None:
        with self._client() as client:
            response = client.get(
                f"/v1/{self.site}/production/meter/{record_id}",
                params={"from": NOW_MS + 1000 * low, "to": NOW_MS + 1000 * (low + length)},
            )
        if response.status_code == 400:  # an id never written yet
            assert not any(i == record_id for i, _ in self.model) and response.json()["status_code"] == 1107
            return
        got = {(r["timestamp"] - NOW_MS) // 1000: r["p"] for r in ok(response)["results"]}
        assert got == {t: p for (i, t), p in self.model.items() if i == record_id and low <= t < low + length}

    @precondition(lambda self: bool(self.model))
    @rule(function=st.sampled_from(["min", "max", "avg"]), period_s=st.sampled_from([1, 3, 10]))
    def read_aggregated(self, function: str, period_s: int) -> None:
        record_id = next(iter(self.model))[0]
        with self._client() as client:
            response = client.get(
                f"/v1/{self.site}/production/meter/{record_id}",
                params={"from": NOW_MS, "to": NOW_MS + 41_000, "agg": function, "period": f"{period_s}s"},
            )
        buckets: dict[int, list[float | None]] = {}
        for (i, t), p in sorted(self.model.items()):
            if i == record_id:
                buckets.setdefault(t // period_s * period_s, []).append(p)
        reduce = _REDUCE[function]
        expected = {
            b: (reduce([v for v in values if v is not None]) if any(v is not None for v in values) else None)
            for b, values in buckets.items()
        }
        got = {(r["timestamp"] - NOW_MS) // 1000: r["p"] for r in ok(response)["results"]}
        assert got.keys() == expected.keys()
        for bucket, value in got.items():
            assert value == pytest.approx(expected[bucket], rel=1e-9), (function, bucket)

    @rule()
    def wait_for_a_flush(self) -> None:
        time.sleep(0.7)

    @rule()
    def restart(self) -> None:
        assert self.instance is not None
        stop_storecast(self.instance)
        self.instance = start_storecast(self.directory, self.pki, {"STORECAST_FLUSH_INTERVAL": "0.5"})

    @rule()
    def kill_9(self) -> None:
        assert self.instance is not None
        _kill(self.instance)
        self.instance = start_storecast(self.directory, self.pki, {"STORECAST_FLUSH_INTERVAL": "0.5"})

    @invariant()
    def serving(self) -> None:
        assert self.instance is None or self.instance.process.poll() is None

    def teardown(self) -> None:
        if self.instance is not None:
            stop_storecast(self.instance)


def test_reads_equal_a_model_through_flushes_restarts_and_kill_9(tmp_path: Path, test_pki: Pki) -> None:
    _RecentWrites.directory = tmp_path
    _RecentWrites.pki = test_pki
    run_state_machine_as_test(
        _RecentWrites,
        settings=settings(
            max_examples=int(os.environ.get("STORECAST_MODEL_EXAMPLES", "2")),
            stateful_step_count=12,
            deadline=None,
            suppress_health_check=list(HealthCheck),
        ),
    )


def test_the_log_directory_is_tied_to_its_store(tmp_path: Path, test_pki: Pki) -> None:
    instance = start_storecast(tmp_path, test_pki)
    try:
        assert (tmp_path / "wal" / "lock").exists() and (tmp_path / "store").is_dir()
    finally:
        stop_storecast(instance)


def test_a_query_service_of_its_own_asks_the_ingest_replica(tmp_path: Path, test_pki: Pki) -> None:
    """Two stores on purpose (chDB is one process per directory): what the query service returns
    for the recent read can only have come from the ingest replica's hot tier."""
    ingest_port, query_port, http_port = free_port(), free_port(), free_port()
    ingest = spawn(
        "ingest",
        tmp_path,
        {
            "STORECAST_STORE_URL": f"chdb://{tmp_path / 'a'}",
            "STORECAST_GRPC_PORT": str(ingest_port),
            "STORECAST_FLUSH_INTERVAL": "3600",
        },
    )
    query = spawn(
        "query",
        tmp_path,
        {
            "STORECAST_STORE_URL": f"chdb://{tmp_path / 'b'}",
            "STORECAST_GRPC_PORT": str(query_port),
            "STORECAST_INGEST_REPLICAS": f"127.0.0.1:{ingest_port}",
        },
    )
    gateway = spawn(
        "gateway", tmp_path, gateway_env(test_pki, http_port, ingest=f"127.0.0.1:{ingest_port}", query=f"127.0.0.1:{query_port}")
    )
    try:
        wait_for_health(f"127.0.0.1:{ingest_port}", ingest, "storecast.v1.Ingest")
        wait_for_health(f"127.0.0.1:{query_port}", query, "storecast.v1.Query")
        wait_until_serving(f"https://localhost:{http_port}", test_pki.ca, gateway, tmp_path / "gateway.log")
        with admin_client(test_pki, http_port) as admin:
            ok(put(admin, "/v1/1/production/meter", [{"timestamp": NOW_MS, "id": 1, "p": 4.5}]), 201)
            path = f"/v1/1/production/meter/1?from={NOW_MS}&to={NOW_MS + 1}"
            # The first read has the replica store the series (into its store, not the query's), then
            # reads the query's store; from then on the replica's memory answers.
            assert admin.get(path).json()["status_code"] == 1107
            [record] = ok(admin.get(path))["results"]
            assert (record["timestamp"], record["p"], record["q"]) == (NOW_MS, 4.5, None)
    finally:
        for process in (gateway, query, ingest):
            process.terminate()
        for process in (gateway, query, ingest):
            assert process.wait(timeout=60) == 0
