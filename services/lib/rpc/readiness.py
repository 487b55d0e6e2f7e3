"""Readiness and liveness of a service process.

- **Readiness** is the standard gRPC health service (`grpc.health.v1.Health`),
  for each service name of the process (`storecast.v1.Ingest`, ...) and for
  "": SERVING while the store answers a trivial query (`SELECT 1` on a
  connection of its own, every `interval_s`, each within `timeout_s`),
  NOT_SERVING after `failures` probes in a row failed or timed out, and
  SERVING again at the first that succeeds. It starts NOT_SERVING until the
  store has been opened and the schema applied.
- **Liveness** is the health name `storecast.liveness`: always SERVING, so a
  probe of it asks only that the process's gRPC server answers; it never
  waits on the store, so a store outage makes pods unready, not restarted.

Start-up: the store is opened and the schema applied once, before the server
starts, as before. With the embedded engine an error there stops the start
(it is the process's own data directory: nothing to wait for). With a server
(`http(s)://`) an unreachable store does not: the services start NOT_SERVING,
answer calls at once with 1500 (gRPC UNAVAILABLE), and a background thread
retries the opening every `interval_s` until it succeeds.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from concurrent import futures

import grpc
from clickhouse_connect.driver.client import Client
from grpc_health.v1 import health, health_pb2

from services.lib.store.engine import Store
from storecast.status import ApiFailure, ApiStatus

log = logging.getLogger("storecast.readiness")

LIVENESS = "storecast.liveness"

# The probe's timeouts on a ClickHouse server's connection (clickhouse-connect's, seconds).
_PROBE_TIMEOUTS = {"connect_timeout": 1.0, "send_receive_timeout": 2.0}


class StoreReadiness:
    """The process's readiness, from the store's answers; published on a health servicer."""

    def __init__(
        self,
        store: Store,
        schema: Sequence[str],
        *,
        interval_s: float = 1.0,
        timeout_s: float = 2.0,
        failures: int = 2,
    ) -> None:
        self._store = store
        self._schema = schema
        self._opened = False
        self._interval_s = interval_s
        self._timeout_s = timeout_s
        self._failures_allowed = failures
        self._failures = 0
        self._prepared = False
        self.ready = False
        self._health: health.HealthServicer | None = None
        self._names: list[str] = []
        self._probe_client: Client | None = None
        self._pending: futures.Future[None] | None = None
        self._executor = futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="store-probe")
        self._stopping = threading.Event()

    def open(self) -> None:
        """Open the store and apply the schema, before serving. A server store that cannot be
        reached is left to the background thread; the embedded engine's errors stop the start."""
        try:
            self._prepare()
        except Exception as error:
            if self._store.embedded:
                raise
            log.error(
                "store unreachable at start (%s); serving NOT_SERVING, retrying every %g s", _brief(error), self._interval_s
            )
            return
        self._prepared = True
        self.ready = True

    def attach(self, health_servicer: health.HealthServicer, names: Sequence[str]) -> None:
        """Publish liveness and the current readiness, then keep readiness up to date."""
        self._health = health_servicer
        self._names = [*names, ""]
        health_servicer.set(LIVENESS, health_pb2.HealthCheckResponse.SERVING)
        self._publish()
        threading.Thread(target=self._run, name="store-readiness", daemon=True).start()

    def stop(self) -> None:
        self._stopping.set()
        self._executor.shutdown(wait=False, cancel_futures=True)

    def _prepare(self) -> None:
        if not self._opened:
            self._store.open()
            self._opened = True
        self._store.apply(self._schema)

    def check_ready(self) -> None:
        """Refuse a call at once while the store is down: 1500, gRPC UNAVAILABLE."""
        if not self.ready:
            raise ApiFailure(ApiStatus.SERVER_ERROR, "the store is unavailable", grpc_code=grpc.StatusCode.UNAVAILABLE)

    def _run(self) -> None:
        while not self._stopping.wait(self._interval_s):
            if not self._prepared:
                try:
                    self._prepare()
                except Exception as error:
                    log.warning("store still unreachable: %s", _brief(error))
                    continue
                self._prepared = True
                log.info("store reachable, schema applied")
            self._set(self._probe())

    def _probe(self) -> bool:
        """One `SELECT 1` within the timeout; a probe still hanging from before counts as a failure."""
        if self._pending is not None and not self._pending.done():
            return False
        self._pending = self._executor.submit(self._select_one)
        try:
            self._pending.result(timeout=self._timeout_s)
        except futures.TimeoutError:
            log.warning("store probe: no answer within %g s", self._timeout_s)
            return False
        except Exception as error:
            log.warning("store probe failed: %s", _brief(error))
            return False
        return True

    def _select_one(self) -> None:
        try:
            if self._probe_client is None:
                self._probe_client = self._store.connect(**({} if self._store.embedded else _PROBE_TIMEOUTS))
            self._probe_client.command("SELECT 1")
        except Exception:
            client, self._probe_client = self._probe_client, None
            if client is not None:
                client.close()
            raise

    def _set(self, answered: bool) -> None:
        self._failures = 0 if answered else self._failures + 1
        ready = answered or (self.ready and self._failures < self._failures_allowed)
        if ready != self.ready:
            self.ready = ready
            log.warning("store %s: readiness %s", "answers" if ready else "down", "SERVING" if ready else "NOT_SERVING")
            self._publish()

    def _publish(self) -> None:
        if self._health is None:
            return
        status = health_pb2.HealthCheckResponse.SERVING if self.ready else health_pb2.HealthCheckResponse.NOT_SERVING
        for name in self._names:
            self._health.set(name, status)


def _brief(error: Exception) -> str:
    """An error's type and first line, for the log."""
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}"
