"""Long ranges: one meter-3p at 1 Hz for 14 and 90 days, then a 1 h and a 1 d average
over the whole range and the raw records of its last hour (uncompressed), storecast
(rollups) beside InfluxDB and VictoriaMetrics.

Every system gets the same records (workload.Dataset), fresh, and each is measured
alone. storecast is fed typed RecordBatches over gRPC, 100,000 records each; the
peers line protocol, 50,000 records a request; neither side's encoding is timed.

Standalone: .venv/bin/python tests/bench/long_ranges.py [--days 14 90] [--skip-peers]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import grpc
import httpx
import numpy as np
import peers
from processes import free_port
from storecast_target import start_storecast
from timing import repeat
from workload import ATTRIBUTES, EQUIPMENT_TYPE, MEASUREMENT, Dataset, json_body, line_protocol_body, recent_aligned_start_ms

from storecast.catalog import EQUIPMENT_TYPES
from storecast.v1 import catalog_pb2, ingest_pb2, ingest_pb2_grpc, records_pb2

SITE_ID = 1
PERIODS_MS = {"1h": 3_600_000, "1d": 86_400_000}
# Issue 20's Grafana panel: an hour's average of one attribute at a 1 h step over the whole range, as
# PromQL, through storecast's /ext/prom and VictoriaMetrics' own API (InfluxDB 1.x speaks no PromQL).
PROMQL_STEP_S = 3600
PROMQL = 'avg_over_time({metric}{{id="1"}}[1h])'
RUNS = 5
# Issue 22: the raw records of the range's last hour, as a dashboard's "last hour" of a long history reads them.
LAST_HOUR_MS = 3_600_000
# The server's time, not the coding's: every system answers these reads uncompressed.
IDENTITY = {"Accept-Encoding": "identity"}
UPKEEP_JSON_RECORDS = 1_000_000
# Rollups on and off alternate, each trial into fresh instances; each figure is its median over the
# trials. One trial's ratio moved from 0.4 to 1.2 between runs of the same code: the engine's
# background merges and the disk's syncs take the same cores and disk at moments of their own.
UPKEEP_TRIALS = 3
_EQUIPMENT = catalog_pb2.EquipmentType.ValueType(EQUIPMENT_TYPES[EQUIPMENT_TYPE].enum_value)
_CHANNEL_OPTIONS = [("grpc.max_receive_message_length", -1), ("grpc.max_send_message_length", -1)]


def last_hour(dataset: Dataset) -> Dataset:
    """The dataset's last hour, as a range: what the peers' raw reads take of a dataset."""
    return replace(dataset, start_ms=dataset.end_ms - LAST_HOUR_MS, seconds=LAST_HOUR_MS // 1000)


def dataset_of(days: int) -> Dataset:
    # Aligned to midnight UTC plus an hour, so the range's edges are unaligned to 1 d, as a user's would be.
    start = recent_aligned_start_ms(days + 1)
    start = start - start % 86_400_000 + 3_600_000
    return Dataset(SITE_ID, (1,), start, days * 86_400, batch_records=50_000)


def _typed(dataset: Dataset, start: int, stop: int) -> ingest_pb2.PutProductionRequest:
    columns = dataset.columns
    batch = records_pb2.RecordBatch(timestamps=columns["timestamp"][start:stop], ids=columns["id"][start:stop].astype(np.uint32))
    batch.columns.extend(records_pb2.Column(name=name, doubles=columns[name][start:stop]) for name in ATTRIBUTES)
    return ingest_pb2.PutProductionRequest(site_id=dataset.site_id, equipment_type=_EQUIPMENT, batch=batch)


def bench_storecast(workdir: Path, dataset: Dataset) -> dict[str, Any]:
    metrics_port = free_port()
    target = start_storecast(workdir, 100_000, {"STORECAST_METRICS_PORT": str(metrics_port)})
    result: dict[str, Any] = {}
    try:
        with grpc.insecure_channel(target.grpc_target, options=_CHANNEL_OPTIONS) as channel:
            stub = ingest_pb2_grpc.IngestStub(channel)
            requests = [
                _typed(dataset, start, min(start + 100_000, dataset.records)) for start in range(0, dataset.records, 100_000)
            ]
            started = time.perf_counter()
            for request in requests:
                stub.PutProduction(request, timeout=600)
            seconds = time.perf_counter() - started
        result["ingest"] = {"seconds": round(seconds, 3), "records_per_s": round(dataset.records / seconds, 1)}
        # Reads in the steady state, as the peers' are once their writes are searchable: the
        # rollups are kept up in the background, and until then reads take the records.
        _wait_upkeep_done(f"http://127.0.0.1:{metrics_port}/metrics")
        with target.client() as client:
            for label, period_ms in PERIODS_MS.items():
                params: dict[str, str | int] = {"from": dataset.start_ms, "to": dataset.end_ms, "agg": "avg", "period": label}

                # The body's bytes, as the peers' are timed; decoded after the clock.
                def get(p: dict[str, str | int] = params) -> bytes:
                    response = target.get(client, dataset.site_id, 1, p)
                    if response.status_code != 200:
                        raise RuntimeError(f"storecast GET {p}: {response.status_code} {response.text[:200]}")
                    return response.content

                timed = repeat(get, RUNS)
                buckets = len(json.loads(timed.last)["results"])
                result[label] = {**timed.as_json(), "buckets": buckets, "expected_buckets": _buckets(dataset, period_ms)}
            metric = f"storecast_{EQUIPMENT_TYPE.replace('-', '_')}_{ATTRIBUTES[0]}"
            result["promql"] = _query_range(client, "/ext/prom/api/v1/query_range", PROMQL.format(metric=metric), dataset, {})
            hour = last_hour(dataset)

            def raw_last_hour() -> bytes:
                response = client.get(
                    f"/v1/{dataset.site_id}/production/{EQUIPMENT_TYPE}/1",
                    params={"from": hour.start_ms, "to": hour.end_ms},
                    headers=IDENTITY,
                )
                if response.status_code != 200:
                    raise RuntimeError(f"storecast raw GET: {response.status_code} {response.text[:200]}")
                return response.content

            timed = repeat(raw_last_hour, RUNS)
            result["raw_last_hour"] = {**timed.as_json(), "records": len(json.loads(timed.last)["results"])}
    finally:
        result["exit_code"] = target.server.stop()
    return result


def _query_range(client: httpx.Client, path: str, query: str, dataset: Dataset, extra: dict[str, str]) -> dict[str, Any]:
    """A Prometheus query_range over the dataset at PROMQL_STEP_S, start and end aligned to the step as Grafana
    aligns them: timed as the body's bytes, then its points counted (one series expected)."""
    step_ms = PROMQL_STEP_S * 1000
    start = -(-dataset.start_ms // step_ms) * step_ms
    end = (dataset.end_ms - 1) // step_ms * step_ms
    params = {"query": query, "start": str(start // 1000), "end": str(end // 1000), "step": str(PROMQL_STEP_S), **extra}

    def get() -> bytes:
        response = client.get(path, params=params)
        if response.status_code != 200:
            raise RuntimeError(f"GET {path} {query}: {response.status_code} {response.text[:200]}")
        return response.content

    timed = repeat(get, RUNS)
    series = json.loads(timed.last)["data"]["result"]
    return {**timed.as_json(), "query": query, "series": len(series), "points": sum(len(s["values"]) for s in series)}


def _metric_total(text: str, name: str) -> float:
    """The sum of a metric's samples over its labels, from the Prometheus text format."""
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name + "{"))


def _wait_upkeep_done(metrics_url: str) -> None:
    """Until the maintainer has recomputed every span the inserts marked (rollups off: at once)."""
    while True:
        text = httpx.get(metrics_url, timeout=10).text
        if _metric_total(text, "storecast_rollup_spans_recomputed_total") >= _metric_total(
            text, "storecast_rollup_spans_marked_total"
        ):
            return
        time.sleep(0.05)


def _rates(records: int, started: float, put: float, done: float) -> dict[str, float]:
    return {
        "seconds": round(put - started, 3),
        "records_per_s": round(records / (put - started), 1),
        "upkeep_done_after_s": round(done - put, 3),
        "records_per_s_upkeep_done": round(records / (done - started), 1),
    }


def bench_upkeep(workdir: Path, dataset: Dataset, trials: int = UPKEEP_TRIALS) -> dict[str, Any]:
    """Bulk ingest with rollup upkeep against the same with rollups off (STORECAST_ROLLUPS=0),
    each into a fresh instance: the dataset in typed 100,000-record batches over gRPC, then
    UPKEEP_JSON_RECORDS of it (all of a smaller one) in 5,000-record v1 JSON PUTs over REST (another site). The
    maintainer works while the PUTs go on; once they are done, the clock goes on until it
    has recomputed every span marked (`upkeep_done_after_s`, a round or two at most when it
    keeps up). On and off alternate for `trials` trials: each figure is its median, each trial's in `trials`."""
    requests = [_typed(dataset, start, min(start + 100_000, dataset.records)) for start in range(0, dataset.records, 100_000)]
    json_records = min(UPKEEP_JSON_RECORDS, dataset.records)
    bodies = [json_body(dataset, start, min(start + 5_000, json_records)) for start in range(0, json_records, 5_000)]
    measured: dict[str, list[dict[str, Any]]] = {"on": [], "off": []}
    for trial in range(trials):
        for label, env in (("on", {}), ("off", {"STORECAST_ROLLUPS": "0"})):
            measured[label].append(
                _upkeep_trial(workdir / f"upkeep-{label}-{trial}", env, dataset, requests, bodies, json_records)
            )
    result: dict[str, Any] = {label: _medians(runs) for label, runs in measured.items()}
    result["trials"] = measured
    return result


def _upkeep_trial(
    workdir: Path,
    env: dict[str, str],
    dataset: Dataset,
    requests: list[ingest_pb2.PutProductionRequest],
    bodies: list[bytes],
    json_records: int,
) -> dict[str, Any]:
    metrics_port = free_port()
    target = start_storecast(workdir, 100_000, {**env, "STORECAST_METRICS_PORT": str(metrics_port)})
    metrics_url = f"http://127.0.0.1:{metrics_port}/metrics"
    measured: dict[str, Any] = {}
    try:
        with grpc.insecure_channel(target.grpc_target, options=_CHANNEL_OPTIONS) as channel:
            stub = ingest_pb2_grpc.IngestStub(channel)
            started = time.perf_counter()
            for request in requests:
                stub.PutProduction(request, timeout=600)
            put = time.perf_counter()
            _wait_upkeep_done(metrics_url)
            measured["typed_100000"] = _rates(dataset.records, started, put, time.perf_counter())
        with target.client() as client:
            started = time.perf_counter()
            for body in bodies:
                response = target.put(client, dataset.site_id + 1, body)
                if response.status_code != 201:
                    raise RuntimeError(f"storecast PUT: {response.status_code} {response.text[:200]}")
            put = time.perf_counter()
            _wait_upkeep_done(metrics_url)
            measured["json_5000"] = _rates(json_records, started, put, time.perf_counter())
    finally:
        measured["exit_code"] = target.server.stop()
    return measured


def _medians(trials: list[dict[str, Any]]) -> dict[str, Any]:
    """Per shape, each figure's median over the trials; the exit code the first that is not 0, if any."""
    shapes = [key for key in trials[0] if key != "exit_code"]
    medians: dict[str, Any] = {
        shape: {field: round(float(np.median([trial[shape][field] for trial in trials])), 3) for field in trials[0][shape]}
        for shape in shapes
    }
    medians["exit_code"] = next((trial["exit_code"] for trial in trials if trial["exit_code"]), 0)
    return medians


def bench_vectors(workdir: Path) -> dict[str, Any]:
    """Forecast aggregation on raw periods: a week of 15-min periods (672) per vintage, one
    vintage and all 48 of two days' half-hourly runs, averaged per hour and per day."""
    target = start_storecast(workdir, 100_000)
    start = recent_aligned_start_ms(8)
    periods = 672
    vintages = [
        {
            "creation_timestamp": start + run * 1_800_000,
            "id": 1,
            "values": [{"timestamp": start + i * 900_000, "p": float(i % 96), "quality": 2} for i in range(periods)],
        }
        for run in range(48)
    ]
    result: dict[str, Any] = {"periods_per_vintage": periods, "vintages": len(vintages)}
    try:
        with target.client() as client:
            response = client.put(f"/v1/{SITE_ID}/forecast/solar", json={"values": vintages})
            if response.status_code != 201:
                raise RuntimeError(f"forecast PUT: {response.status_code} {response.text[:200]}")
            every = {"generated-after": start, "generated-before": start + 48 * 1_800_000, "generate-all": "true"}
            for label, extra in (("latest", {}), ("all_48", every)):
                for period in ("1h", "1d"):
                    params = {"from": start, "to": start + periods * 900_000, "agg": "avg", "period": period, **extra}

                    def get(p: dict[str, Any] = params) -> int:
                        reply = client.get(f"/v1/{SITE_ID}/forecast/solar/1", params=p)
                        if reply.status_code != 200:
                            raise RuntimeError(f"forecast GET {p}: {reply.status_code} {reply.text[:200]}")
                        return len(reply.json()["results"])

                    timed = repeat(get, RUNS)
                    result[f"{label}_{period}"] = {**timed.as_json(), "vintages": timed.last}
    finally:
        result["exit_code"] = target.server.stop()
    return result


def _buckets(dataset: Dataset, period_ms: int) -> int:
    return int(dataset.end_ms - 1) // period_ms - dataset.start_ms // period_ms + 1


def bench_peer(peer_class: Callable[[Path], peers.Peer], workdir: Path, dataset: Dataset) -> dict[str, Any]:
    peer = peer_class(workdir)
    result: dict[str, Any] = {}
    try:
        with httpx.Client(timeout=600) as client:
            peer.warm_up(client, dataset)
            bodies = [line_protocol_body(dataset, start, stop) for start, stop in dataset.batch_bounds()]
            started = time.perf_counter()
            for body in bodies:
                peer.write(client, body)
            peer.finish_ingest(client)
            seconds = time.perf_counter() - started
            del bodies
            result["ingest"] = {"seconds": round(seconds, 3), "records_per_s": round(dataset.records / seconds, 1)}
            for label, period_ms in PERIODS_MS.items():

                def aggregate(bucket_ms: int = period_ms) -> bytes:
                    return peer.aggregate(client, dataset, 1, bucket_ms)

                timed = repeat(aggregate, RUNS)
                result[label] = {**timed.as_json(), "buckets": peer.count_buckets(timed.last)}
            hour = last_hour(dataset)
            coding = client.headers["Accept-Encoding"]
            client.headers.update(IDENTITY)
            timed = repeat(lambda: peer.raw(client, hour, 1), RUNS)
            client.headers["Accept-Encoding"] = coding
            result["raw_last_hour"] = {**timed.as_json(), "records": peer.count_raw_records(timed.last)}
            if isinstance(peer, peers.VictoriaMetrics):
                metric = f"{MEASUREMENT}_{ATTRIBUTES[0]}"
                url = f"{peer.server.base_url}/api/v1/query_range"
                result["promql"] = _query_range(client, url, PROMQL.format(metric=metric), dataset, {"nocache": "1"})
    finally:
        result["exit_code"] = peer.server.stop()
    return result


def bench_long_ranges(workdir: Path, days: list[int], with_peers: bool, say: Callable[[str], None] = print) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for count in days:
        dataset = dataset_of(count)
        key = f"{count}d"
        results[key] = {"records": dataset.records}
        say(f"long ranges, {count} days ({dataset.records:,} records of one {EQUIPMENT_TYPE} at 1 Hz)")
        results[key]["storecast"] = bench_storecast(workdir / f"{key}-storecast", dataset)
        systems = [("storecast", results[key]["storecast"])]
        if with_peers:
            for name, peer_class in (("influxdb", peers.InfluxDB), ("victoria_metrics", peers.VictoriaMetrics)):
                results[key][name] = bench_peer(peer_class, workdir / f"{key}-{name}", dataset)
                systems.append((name, results[key][name]))
        for name, measured in systems:
            say(
                f"  {name:16} ingest {measured['ingest']['records_per_s']:>9,.0f} records/s,"
                + "".join(f" {label} avg {measured[label]['median_ms']:7.1f} ms" for label in PERIODS_MS)
                + (f", PromQL 1 h step {measured['promql']['median_ms']:.1f} ms" if "promql" in measured else "")
            )
        if count == max(days):
            say(f"  rollup upkeep: bulk ingest of the {count}-day dataset, rollups on and off")
            results["upkeep"] = bench_upkeep(workdir / "upkeep", dataset)
            for shape in ("typed_100000", "json_5000"):
                on, off = (results["upkeep"][label][shape] for label in ("on", "off"))
                say(
                    f"    {shape:14} on {on['records_per_s']:>9,.0f} records/s (upkeep done {on['upkeep_done_after_s']:.1f} s"
                    f" after), off {off['records_per_s']:>9,.0f} records/s ({on['records_per_s'] / off['records_per_s']:.2f}x)"
                )
        del dataset
    say("forecast aggregation on raw periods (vectors have no rollups)")
    results["vectors"] = bench_vectors(workdir / "vectors")
    for key, value in results["vectors"].items():
        if isinstance(value, dict):
            say(f"  forecast avg {key}: {value['median_ms']:.1f} ms ({value['vintages']} vintages)")
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--days", type=int, nargs="+", default=[14, 90])
    parser.add_argument("--skip-peers", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="storecast-long-") as workdir:
        print(json.dumps(bench_long_ranges(Path(workdir), args.days, not args.skip_peers), indent=2))


if __name__ == "__main__":
    main()
