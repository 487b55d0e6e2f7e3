"""The services' Prometheus metrics: gRPC calls, the store, records, group commit.

Module-level objects in the process's default registry, which
`storecast.metrics` serves on STORECAST_METRICS_PORT. Every family has labels,
so a process that never serves (a gateway worker importing this module) shows
none of their samples. Hot paths touch a pre-bound child: one locked add.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from prometheus_client import Counter, Gauge, Histogram

from storecast.status import ApiFailure
from storecast.tracing import store_span

# Seconds: a point read is about a millisecond, a 100,000-record PUT a second or more.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

GRPC_HANDLING = Histogram(
    "storecast_grpc_server_handling_seconds",
    "Time a gRPC call took, from its request to its last response message.",
    ["service", "method"],
    buckets=LATENCY_BUCKETS,
)
GRPC_HANDLED = Counter(
    "storecast_grpc_server_handled",
    "gRPC calls completed, by gRPC status code and API status code (none: the call was cancelled).",
    ["service", "method", "code", "api_status"],
)
GRPC_IN_FLIGHT = Gauge(
    "storecast_grpc_server_requests_in_flight", "gRPC calls being handled.", ["service"], multiprocess_mode="livesum"
)

RECORDS_WRITTEN = Counter(
    "storecast_records_written",
    "Records stored by acknowledged PUTs: production records, forecast, commitment and tariff periods.",
    ["category", "type"],
)
VECTORS_WRITTEN = Counter(
    "storecast_vectors_written", "Forecast and commitment vectors stored by acknowledged PUTs.", ["category", "type"]
)
RECORDS_READ = Counter(
    "storecast_records_read",
    "Records returned by reads: production records, forecast, commitment and tariff periods.",
    ["category", "type"],
)

STORE_DURATION = Histogram(
    "storecast_store_query_duration_seconds",
    "Time a store call took: an insert (with its rollup upkeep) or a query (a stream: until its last block).",
    ["kind"],
    buckets=LATENCY_BUCKETS,
)
STORE_ERRORS = Counter("storecast_store_errors", "Store calls that failed.", ["kind"])

BATCH_REQUESTS = Histogram(
    "storecast_insert_batch_requests",
    "PUT requests stored together by one insert (group commit), per table.",
    ["table"],
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096),
)
BATCH_ROWS = Histogram(
    "storecast_insert_batch_rows",
    "Rows stored by one insert, per table.",
    ["table"],
    buckets=(1, 10, 100, 1_000, 10_000, 100_000, 1_000_000),
)

ROLLUP_SPANS_MARKED = Counter(
    "storecast_rollup_spans_marked",
    "Spans of inserted records marked pending for rollup upkeep, by raw table (the re-marks at a start not counted).",
    ["table"],
)
ROLLUP_SPANS_RECOMPUTED = Counter(
    "storecast_rollup_spans_recomputed",
    "Pending spans whose rollup cells were recomputed and whose marks were deleted, by raw table.",
    ["table"],
)
READS_PER_QUERY = Histogram(
    "storecast_store_reads_per_query",
    "Small raw production reads answered by one engine query (services/query/gathered.py).",
    buckets=(1, 2, 4, 8, 16, 32),
)
ROLLUP_PENDING_LOOKUPS = Counter(
    "storecast_rollup_pending_lookups",
    "Lookups of a range's pending rollup marks before an aggregation from cells (v1 or PromQL), by where they were"
    " answered: memory (the ingest's own marks, in its process) or the store.",
    ["answered_from"],
)
PENDING_LOOKUPS_IN_MEMORY = ROLLUP_PENDING_LOOKUPS.labels("memory")
PENDING_LOOKUPS_IN_STORE = ROLLUP_PENDING_LOOKUPS.labels("store")

# The write-ahead log and the hot tier (services/ingest/), labelled by what they hold.
WAL_BYTES = Gauge("storecast_wal_bytes", "Bytes of write-ahead log segments not yet released (flushed).", ["kind"])
WAL_UNFLUSHED_ROWS = Gauge(
    "storecast_wal_unflushed_rows", "Records acknowledged from the write-ahead log and not yet taken by a flush.", ["kind"]
)
# As Prometheus' own prometheus_tsdb_wal_fsync_duration_seconds: what each acknowledged PUT waits for.
WAL_SYNC_SECONDS = Histogram(
    "storecast_wal_fsync_duration_seconds",
    "Duration of each write and fdatasync of the write-ahead log.",
    ["kind"],
    buckets=(0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
)
WAL_SYNC_ENTRIES = Histogram(
    "storecast_wal_entries_per_fsync",
    "Requests made durable by each fdatasync of the write-ahead log (group commit).",
    ["kind"],
    buckets=(1, 2, 4, 8, 16, 32, 64, 128),
)
WAL_FLUSHES = Counter("storecast_wal_flushes", "Flushes of the write-ahead log into the store, by outcome.", ["kind", "outcome"])
HOT_TIER_BYTES = Gauge("storecast_hot_tier_bytes", "Bytes of records held by the hot tier.", ["kind"])
HOT_TIER_READS = Counter(
    "storecast_hot_tier_reads", "Production reads by where they were answered: memory or the store.", ["kind", "answered_from"]
)
PROM_WINDOW_READS = Counter(
    "storecast_prom_window_reads",
    "PromQL range functions the engine reduced, by plan: whole rollup cells, minute cells and edge records, or records only.",
    ["plan"],
)


class StoreCall:
    """Times calls of one kind ("insert" or "query") and counts their failures.

    An ApiFailure raised inside (an id never stored, found by the store's
    answer) is the caller's error, not the store's."""

    def __init__(self, kind: str) -> None:
        self._kind = kind
        self._duration = STORE_DURATION.labels(kind)
        self._errors = STORE_ERRORS.labels(kind)

    @contextmanager
    def __call__(self) -> Iterator[None]:
        started = time.perf_counter()
        try:
            with store_span(self._kind):  # a span of the call when tracing is on (storecast/tracing.py)
                yield
        except ApiFailure:
            raise
        except Exception:
            self._errors.inc()
            raise
        finally:
            self._duration.observe(time.perf_counter() - started)


store_insert = StoreCall("insert")
store_query = StoreCall("query")
