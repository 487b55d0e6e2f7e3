"""The peers storecast is compared with: InfluxDB 1.x and VictoriaMetrics (Debian packages).

Each runs on loopback, on free ports, with all its state in a directory the
bench owns. Both take the dataset as Influx line protocol on /write.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Protocol

import httpx
from processes import DiskUsage, Server, free_port, launch, wait_for_stable_disk, wait_until
from workload import ATTRIBUTES, BUCKET_MS, MEASUREMENT, WARMUP_MEASUREMENT, WARMUP_RECORDS, Dataset, line_protocol_body

PACKAGES = {"influxd": "influxdb", "victoria-metrics": "victoria-metrics"}


def ensure_installed() -> dict[str, str]:
    """The peers' binaries, installed from Debian when missing (needs root)."""
    missing = [binary for binary in PACKAGES if shutil.which(binary) is None]
    if missing:
        if os.geteuid() != 0:
            raise RuntimeError(
                f"{', '.join(missing)} missing; run: sudo apt-get install -y {' '.join(PACKAGES[b] for b in missing)}"
            )
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        # A fresh machine may have no package lists at all.
        subprocess.run(["apt-get", "update"], check=True, env=env, stdout=subprocess.DEVNULL)
        subprocess.run(
            ["apt-get", "install", "-y", *(PACKAGES[b] for b in missing)], check=True, env=env, stdout=subprocess.DEVNULL
        )
    return {binary: shutil.which(binary) or "" for binary in PACKAGES}


def package_version(package: str) -> str:
    result = subprocess.run(["dpkg-query", "-W", "-f=${Version}", package], capture_output=True, text=True, check=False)
    return result.stdout.strip() or "unknown"


class Peer(Protocol):
    name: str
    server: Server
    settle_note: str
    aggregate_note: str
    raw_note: str

    def warm_up(self, client: httpx.Client, dataset: Dataset) -> None: ...
    def write(self, client: httpx.Client, body: bytes) -> None: ...
    def finish_ingest(self, client: httpx.Client) -> None: ...
    def settle_for_disk(self, client: httpx.Client) -> DiskUsage: ...
    def aggregate(self, client: httpx.Client, dataset: Dataset, equipment_id: int, bucket_ms: int = BUCKET_MS) -> bytes: ...
    def count_buckets(self, body: bytes) -> int: ...
    def raw(self, client: httpx.Client, dataset: Dataset, equipment_id: int) -> bytes: ...
    def count_raw_records(self, body: bytes) -> int: ...


def _expect(response: httpx.Response, *statuses: int) -> httpx.Response:
    if response.status_code not in statuses:
        raise RuntimeError(f"{response.request.method} {response.request.url} -> {response.status_code}: {response.text[:500]}")
    return response


# -- InfluxDB ---------------------------------------------------------------------------------

INFLUX_DB = "bench"
_INFLUX_WARMUP_DB = "warmup"

_INFLUX_CONFIG = """\
reporting-disabled = true
bind-address = "127.0.0.1:{rpc_port}"

[meta]
  dir = "{root}/meta"

[data]
  dir = "{root}/data"
  wal-dir = "{root}/wal"
  query-log-enabled = false
  # Snapshot the cache to TSM and fully compact soon after the last write,
  # so the bytes measured on disk are the compacted form, not WAL.
  cache-snapshot-write-cold-duration = "5s"
  compact-full-write-cold-duration = "5s"

[monitor]
  # Its _internal database would grow the data directory on its own.
  store-enabled = false

[http]
  enabled = true
  bind-address = "127.0.0.1:{http_port}"
  log-enabled = false
  max-row-limit = 0

[continuous_queries]
  enabled = false

[subscriber]
  enabled = false

[shard-precreation]
  enabled = false
"""


class InfluxDB:
    name = "InfluxDB"
    settle_note = (
        "warm-up database dropped; cache snapshot and full compaction set to 5 s after the last write,"
        " then waited for a stable size"
    )
    aggregate_note = "InfluxQL SELECT mean(*) ... GROUP BY time(15m), epoch=ms"
    raw_note = "InfluxQL SELECT * over the range, epoch=ms, not chunked"

    def __init__(self, workdir: Path) -> None:
        root = workdir / "influxdb"
        root.mkdir(parents=True)
        http_port = free_port()
        config = root / "influxdb.conf"
        config.write_text(_INFLUX_CONFIG.format(root=root, rpc_port=free_port(), http_port=http_port))
        self.server = launch(
            self.name, ["influxd", "-config", str(config)], root, workdir / "influxdb.log", f"http://127.0.0.1:{http_port}"
        )
        wait_until(lambda: httpx.get(f"{self.server.base_url}/ping", timeout=2).status_code == 204, self.server)
        _expect(httpx.post(f"{self.server.base_url}/query", params={"q": f"CREATE DATABASE {INFLUX_DB}"}, timeout=30), 200)

    def warm_up(self, client: httpx.Client, dataset: Dataset) -> None:
        """The first records into a database of their own, dropped before the disk is measured."""
        _expect(client.post(f"{self.server.base_url}/query", params={"q": f"CREATE DATABASE {_INFLUX_WARMUP_DB}"}), 200)
        body = line_protocol_body(dataset, 0, min(WARMUP_RECORDS, dataset.records))
        response = client.post(f"{self.server.base_url}/write", params={"db": _INFLUX_WARMUP_DB, "precision": "ms"}, content=body)
        _expect(response, 204)

    def write(self, client: httpx.Client, body: bytes) -> None:
        response = client.post(f"{self.server.base_url}/write", params={"db": INFLUX_DB, "precision": "ms"}, content=body)
        _expect(response, 204)

    def finish_ingest(self, client: httpx.Client) -> None:
        """A 204 from /write means the points are in the WAL and queryable already."""

    def settle_for_disk(self, client: httpx.Client) -> DiskUsage:
        _expect(client.post(f"{self.server.base_url}/query", params={"q": f"DROP DATABASE {_INFLUX_WARMUP_DB}"}), 200)
        return wait_for_stable_disk(self.server.data_dir, quiet_s=10)

    def _query(self, client: httpx.Client, statement: str) -> bytes:
        response = client.get(f"{self.server.base_url}/query", params={"db": INFLUX_DB, "epoch": "ms", "q": statement})
        return _expect(response, 200).content

    @staticmethod
    def _range(dataset: Dataset, equipment_id: int) -> str:
        return f"id = '{equipment_id}' AND time >= {dataset.start_ms}ms AND time < {dataset.end_ms}ms"

    def aggregate(self, client: httpx.Client, dataset: Dataset, equipment_id: int, bucket_ms: int = BUCKET_MS) -> bytes:
        where = self._range(dataset, equipment_id)
        return self._query(client, f"SELECT mean(*) FROM {MEASUREMENT} WHERE {where} GROUP BY time({bucket_ms // 1000}s)")

    def raw(self, client: httpx.Client, dataset: Dataset, equipment_id: int) -> bytes:
        return self._query(client, f"SELECT * FROM {MEASUREMENT} WHERE {self._range(dataset, equipment_id)}")

    @staticmethod
    def _rows(body: bytes) -> list[list[object]]:
        result = json.loads(body)["results"][0]
        if "error" in result:
            raise RuntimeError(f"InfluxDB: {result['error']}")
        return [row for series in result.get("series", []) for row in series["values"]]

    def count_buckets(self, body: bytes) -> int:
        return len(self._rows(body))

    def count_raw_records(self, body: bytes) -> int:
        return len(self._rows(body))


# -- VictoriaMetrics ---------------------------------------------------------------------------


class VictoriaMetrics:
    name = "VictoriaMetrics"
    settle_note = (
        "warm-up series deleted, /internal/force_flush, /internal/force_merge, waited for no active merge, then for a stable size"
    )
    aggregate_note = (
        'query_range avg_over_time({__name__=~"meter3p_.*",id="N"}[15m]), step 15m, evaluated 1 ms before each '
        "bucket end so each window holds exactly the bucket's samples; nocache=1 (no rollup cache, no alignment)"
    )
    raw_note = '/api/v1/export of {__name__=~"meter3p_.*",id="N"} over the range (13 series, JSON lines)'

    def __init__(self, workdir: Path) -> None:
        root = workdir / "victoria-metrics"
        root.mkdir(parents=True)
        http_port = free_port()
        argv = [
            "victoria-metrics",
            f"-httpListenAddr=127.0.0.1:{http_port}",
            f"-storageDataPath={root}",
            "-loggerLevel=WARN",
            # Its default keeps one month and drops older samples as they arrive: the long ranges hold 90 days.
            "-retentionPeriod=100y",
            # Repeated benchmark queries would otherwise be answered from its rollup cache (NOTES.md, "Peers, fairly").
            "-search.disableCache",
            "-search.latencyOffset=0s",
        ]
        self.server = launch(self.name, argv, root, workdir / "victoria-metrics.log", f"http://127.0.0.1:{http_port}")
        wait_until(lambda: httpx.get(f"{self.server.base_url}/health", timeout=2).status_code == 200, self.server)

    def warm_up(self, client: httpx.Client, dataset: Dataset) -> None:
        """The first records under a measurement of their own, deleted before the disk is measured."""
        body = line_protocol_body(dataset, 0, min(WARMUP_RECORDS, dataset.records), WARMUP_MEASUREMENT)
        self.write(client, body)

    def write(self, client: httpx.Client, body: bytes) -> None:
        _expect(client.post(f"{self.server.base_url}/write", params={"precision": "ms"}, content=body), 204)

    def finish_ingest(self, client: httpx.Client) -> None:
        """VictoriaMetrics buffers accepted rows for up to a second; the ingest ends when they are searchable."""
        _expect(client.get(f"{self.server.base_url}/internal/force_flush"), 200)

    def _metric(self, client: httpx.Client, prefix: str) -> float:
        text = _expect(client.get(f"{self.server.base_url}/metrics"), 200).text
        return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(prefix))

    def settle_for_disk(self, client: httpx.Client) -> DiskUsage:
        warmup = {"match[]": f'{{__name__=~"{WARMUP_MEASUREMENT}_.*"}}'}
        _expect(client.post(f"{self.server.base_url}/api/v1/admin/tsdb/delete_series", params=warmup), 204)
        _expect(client.get(f"{self.server.base_url}/internal/force_flush"), 200)
        # Merges drop the deleted warm-up samples and compact the parts.
        _expect(client.get(f"{self.server.base_url}/internal/force_merge"), 200)
        deadline = time.monotonic() + 120
        time.sleep(0.5)
        while time.monotonic() < deadline:
            if self._metric(client, "vm_active_force_merges") == 0 and self._metric(client, "vm_active_merges{") == 0:
                break
            time.sleep(0.5)
        return wait_for_stable_disk(self.server.data_dir)

    @staticmethod
    def _selector(equipment_id: int) -> str:
        return f'{{__name__=~"{MEASUREMENT}_.*",id="{equipment_id}"}}'

    def aggregate(self, client: httpx.Client, dataset: Dataset, equipment_id: int, bucket_ms: int = BUCKET_MS) -> bytes:
        # Evaluated 1 ms before each epoch-aligned bucket's end, the window holds exactly the bucket's samples.
        first_end_ms = dataset.start_ms // bucket_ms * bucket_ms + bucket_ms - 1
        last_end_ms = (dataset.end_ms - 1) // bucket_ms * bucket_ms + bucket_ms - 1
        params = {
            "query": f"avg_over_time({self._selector(equipment_id)}[{bucket_ms // 1000}s])",
            "start": f"{first_end_ms / 1000:.3f}",
            "end": f"{last_end_ms / 1000:.3f}",
            "step": f"{bucket_ms // 1000}s",
            "nocache": "1",
        }
        return _expect(client.get(f"{self.server.base_url}/api/v1/query_range", params=params), 200).content

    def raw(self, client: httpx.Client, dataset: Dataset, equipment_id: int) -> bytes:
        params = {
            "match[]": self._selector(equipment_id),
            "start": f"{dataset.start_ms / 1000:.3f}",
            # export's end is inclusive
            "end": f"{(dataset.end_ms - 1) / 1000:.3f}",
        }
        return _expect(client.get(f"{self.server.base_url}/api/v1/export", params=params), 200).content

    def count_buckets(self, body: bytes) -> int:
        """Points per series; every series must have the same count."""
        series = json.loads(body)["data"]["result"]
        counts = {len(s["values"]) for s in series}
        if len(series) != len(ATTRIBUTES) or len(counts) != 1:
            raise RuntimeError(f"VictoriaMetrics: {len(series)} series with point counts {sorted(counts)}")
        return counts.pop()

    def count_raw_records(self, body: bytes) -> int:
        series = [json.loads(line) for line in body.splitlines() if line.strip()]
        counts = {len(s["values"]) for s in series}
        if len(series) != len(ATTRIBUTES) or len(counts) != 1:
            raise RuntimeError(f"VictoriaMetrics: {len(series)} series with sample counts {sorted(counts)}")
        return counts.pop()
