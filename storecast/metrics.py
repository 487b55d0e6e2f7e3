"""The Prometheus endpoint of a process: plain HTTP on STORECAST_METRICS_PORT, `/metrics`.

Off unless the port is set. The gateway's HTTPS port stays mutual TLS only;
the metrics have a port of their own, which Kubernetes keeps to the cluster
(the chart's NetworkPolicy and ServiceMonitor).

A component alone (`serve gateway`, `serve ingest`, ...) serves its own
process's registry. `serve all` serves one endpoint for everything: the
services run in this process and the gateway in worker processes, so the
workers write their metrics in prometheus-client's multiprocess mode (one
mmap file per worker in a directory made here, named to them in
PROMETHEUS_MULTIPROC_DIR before they start) and this process serves its own
registry plus the gateway families (`storecast_http_*`) summed over the
workers' files. Process metrics (`process_*`) are then this process's: the
services'. The directory is removed when `serve all` stops.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from threading import Thread
from wsgiref.simple_server import WSGIServer

from prometheus_client import REGISTRY, CollectorRegistry, disable_created_metrics, start_http_server
from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from storecast.env import optional_setting, setting

# The gateway's families (gateway/metrics.py's FAMILY_PREFIX; this root module imports no gateway code).
GATEWAY_FAMILIES = "storecast_http_"
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

# prometheus-client leaves these untyped; their types, as documented.
_multiprocess_collector: Callable[[None, str], Collector] = MultiProcessCollector
_disable_created_series: Callable[[], None] = disable_created_metrics


class _ServeAllCollector(Collector):
    """This process's families but the gateway's, and the gateway's from the workers' files."""

    def __init__(self, workers_dir: Path) -> None:
        self._workers = _multiprocess_collector(None, str(workers_dir))

    def collect(self) -> Iterable[Metric]:
        for family in REGISTRY.collect():
            if not family.name.startswith(GATEWAY_FAMILIES):
                yield family
        for family in self._workers.collect():
            if family.name.startswith(GATEWAY_FAMILIES):
                yield family


@dataclass
class MetricsEndpoint:
    server: WSGIServer
    thread: Thread
    # `serve all` only: where the gateway workers write their metrics.
    workers_dir: Path | None = None

    @property
    def port(self) -> int:
        return self.server.server_port

    def worker_env(self) -> dict[str, str]:
        """What a gateway worker of `serve all` needs: the multiprocess directory, and no endpoint of its own."""
        if self.workers_dir is None:
            return {}
        return {MULTIPROC_ENV: str(self.workers_dir), "STORECAST_METRICS_PORT": ""}

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        if self.workers_dir is not None:
            shutil.rmtree(self.workers_dir, ignore_errors=True)


def serve_metrics(*, gateway_workers: bool = False) -> MetricsEndpoint | None:
    """Serve /metrics on STORECAST_METRICS_HOST:STORECAST_METRICS_PORT, if the port is set;
    `gateway_workers`: also the gateway worker processes' (`serve all`)."""
    port = optional_setting("STORECAST_METRICS_PORT")
    if port is None:
        return None
    # Counters' `_created` series: one more series per child, which no dashboard here reads.
    _disable_created_series()
    workers_dir = Path(tempfile.mkdtemp(prefix="storecast-metrics-")) if gateway_workers else None
    registry = REGISTRY
    if workers_dir is not None:
        # A registry around it, for what the endpoint asks of one (`?name[]=` filters).
        registry = CollectorRegistry(support_collectors_without_names=True)
        registry.register(_ServeAllCollector(workers_dir))
    try:
        server, thread = start_http_server(int(port), addr=setting("STORECAST_METRICS_HOST"), registry=registry)
    except BaseException:
        if workers_dir is not None:
            shutil.rmtree(workers_dir, ignore_errors=True)
        raise
    return MetricsEndpoint(server, thread, workers_dir)
