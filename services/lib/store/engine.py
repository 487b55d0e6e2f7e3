"""The ClickHouse store, through clickhouse-connect: embedded chDB or a server.

`chdb:///abs/dir` runs ClickHouse in this process (one engine per process);
`http(s)://user:pass@host:port/database` talks to a server. Every other module
sees the same client API either way. Every connection renders JSON arrays
(`JSON_ARRAY_FORMAT`) without per-call settings. On a ClickHouse cluster (`cluster`
names it) every session carries the cluster settings, and the schema,
database included, is the migration's (`storecast migrate`).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import clickhouse_connect
from clickhouse_connect.driver.client import Client

from services.lib.reads.render import JSON_ARRAY_SETTINGS
from services.lib.store.cluster import cluster_settings

DEFAULT_DATABASE = "storecast"


class Store:
    def __init__(
        self,
        url: str,
        pool_size: int,
        cluster: str | None = None,
        insert_quorum: str = "auto",
        ca_file: str | None = None,
        connect: bool = True,
    ) -> None:
        self.url = url
        self.cluster = cluster
        self._before_close: list[Callable[[], None]] = []
        self._cluster = cluster
        self._ca_file = ca_file
        # Session settings, set once per connection: per-call settings cost the
        # embedded engine a snapshot query, one SET each and one restore each.
        self._settings = {**JSON_ARRAY_SETTINGS, **(cluster_settings(insert_quorum) if cluster is not None else {})}
        parts = urlsplit(url)
        self.embedded = parts.scheme == "chdb"
        if self.embedded:
            self.database = DEFAULT_DATABASE
        else:
            self.database = parts.path.strip("/") or DEFAULT_DATABASE
        self._pool: queue.LifoQueue[Client] = queue.LifoQueue()
        self._pool_size = pool_size
        self._created = 0
        self._lock = threading.Lock()
        # connect=False: the first connection is `open`'s, later (services/lib/rpc/readiness.py).
        if connect:
            self.open()

    def open(self) -> None:
        """The first connection, and the database unless on a cluster (there it is the migration's)."""
        first = self._connect()
        self._created += 1
        try:
            if self._cluster is None:
                first.command(f"CREATE DATABASE IF NOT EXISTS {self.database}")
        finally:
            self._pool.put(first)

    def connect(self, **timeouts: Any) -> Client:
        """A connection outside the pool (the readiness probe's); `timeouts` are a server's connect/send_receive_timeout."""
        return self._connect(**timeouts)

    def _connect(self, **timeouts: Any) -> Client:
        parts = urlsplit(self.url)
        if self.embedded:
            # Query parameters are engine options (chdb:///dir?config-file=...).
            options = dict(parse_qsl(parts.query)) or None
            return clickhouse_connect.get_client(
                dsn=parts._replace(query="").geturl(), chdb_options=options, settings=self._settings
            )
        return clickhouse_connect.get_client(
            host=parts.hostname,
            port=parts.port or (8443 if parts.scheme == "https" else 8123),
            username=unquote(parts.username or "default"),
            password=unquote(parts.password or ""),
            secure=parts.scheme == "https",
            ca_cert=self._ca_file,
            autogenerate_session_id=False,
            settings=self._settings,
            **timeouts,
        )

    @contextmanager
    def client(self) -> Iterator[Client]:
        """A client for this thread's exclusive use; clients are not thread-safe."""
        with self._lock:
            try:
                client: Client | None = self._pool.get_nowait()
            except queue.Empty:
                client = self._connect() if self._created < self._pool_size else None
                # Counted once made: a connection that failed takes no place in the pool.
                self._created += client is not None
        if client is None:
            client = self._pool.get()
        try:
            yield client
        finally:
            self._pool.put(client)

    def table(self, name: str) -> str:
        return f"{self.database}.{name}"

    def apply(self, statements: Sequence[str]) -> None:
        with self.client() as client:
            for statement in statements:
                client.command(statement)

    def before_close(self, stop: Callable[[], None]) -> None:
        """Run `stop` when the store closes, before its connections do (a background user)."""
        self._before_close.append(stop)

    def close(self) -> None:
        for stop in self._before_close:
            stop()
        while not self._pool.empty():
            self._pool.get_nowait().close()
