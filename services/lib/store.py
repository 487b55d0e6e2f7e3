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
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from urllib.parse import parse_qsl, unquote, urlsplit

import clickhouse_connect
from clickhouse_connect.driver.client import Client

from storecast.services.lib.cluster import CLUSTER_SETTINGS
from storecast.services.lib.render import JSON_ARRAY_SETTINGS

DEFAULT_DATABASE = "storecast"


class Store:
    def __init__(self, url: str, pool_size: int, cluster: str | None = None) -> None:
        self.url = url
        # Session settings, set once per connection: per-call settings cost the
        # embedded engine a snapshot query, one SET each and one restore each.
        self._settings = {**JSON_ARRAY_SETTINGS, **(CLUSTER_SETTINGS if cluster is not None else {})}
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
        first = self._connect()
        if cluster is None:
            first.command(f"CREATE DATABASE IF NOT EXISTS {self.database}")
        self._pool.put(first)

    def _connect(self) -> Client:
        parts = urlsplit(self.url)
        self._created += 1
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
            autogenerate_session_id=False,
            settings=self._settings,
        )

    @contextmanager
    def client(self) -> Iterator[Client]:
        """A client for this thread's exclusive use; clients are not thread-safe."""
        with self._lock:
            try:
                client: Client | None = self._pool.get_nowait()
            except queue.Empty:
                client = self._connect() if self._created < self._pool_size else None
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

    def close(self) -> None:
        while not self._pool.empty():
            self._pool.get_nowait().close()
