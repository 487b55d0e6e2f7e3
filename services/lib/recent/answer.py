"""A production read answered from the hot tier, in the very bytes the engine renders
(services/lib/reads/render.py: `render_array`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import numpy as np

from services.lib.reads.render import render_array
from services.lib.reads.window import Window
from services.lib.recent.hot import RecentWrites, SeriesRecords
from storecast.aggregations import Aggregation
from storecast.catalog import RecordType
from storecast.v1 import query_pb2, records_pb2


def answers(aggregation: Aggregation | None) -> bool:
    return aggregation is None or aggregation.memory is not None


def render(
    equipment: RecordType,
    record_id: int,
    records: SeriesRecords,
    aggregation: Aggregation | None,
    period_ms: int | None,
    limit: int,
) -> tuple[bytes, int, int | None]:
    """The JSON array of at most `limit` records (raw, or one per non-empty bucket), its count and next_from."""
    keys = [a.name for a in equipment.attributes]
    if aggregation is None or aggregation.memory is None or period_ms is None:
        timestamps, columns, kinds = records.timestamps, records.attributes, [a.kind for a in equipment.attributes]
    else:
        timestamps, columns = _aggregate(records, aggregation.memory, period_ms)
        kinds = [aggregation.kind(a) for a in equipment.attributes]
    next_from = int(timestamps[limit]) if len(timestamps) > limit else None
    count = min(limit, len(timestamps))
    cut = [column[:count] for column in columns]
    return render_array(timestamps[:count].tolist(), record_id, keys, kinds, cut), count, next_from


def _aggregate(
    records: SeriesRecords, reduce: Callable[[np.ndarray], float | None], period_ms: int
) -> tuple[np.ndarray, list[np.ndarray]]:
    """One row per non-empty bucket [k*period, (k+1)*period[, each attribute reduced over its non-null values."""
    buckets = records.timestamps // period_ms * period_ms
    starts = np.flatnonzero(np.r_[True, buckets[1:] != buckets[:-1]]) if len(buckets) else np.array([], dtype=np.int64)
    ends = np.r_[starts[1:], len(buckets)]
    columns = []
    for column in records.attributes:
        reduced = np.full(len(starts), np.nan)
        for index, (start, end) in enumerate(zip(starts.tolist(), ends.tolist())):
            values = column[start:end]
            value = reduce(values[~np.isnan(values)])
            if value is not None:
                reduced[index] = value
        columns.append(reduced)
    return buckets[starts], columns


# Rendering in Python costs about 0.7 µs per value, the engine's fixed cost per query 7-20 ms: past
# this many values a raw answer is rendered faster by the engine (a 20,000-record meter-3p read took
# 167 ms from memory in `make bench`, 121 ms through the store). Aggregated answers are a few buckets.
MEMORY_RENDER_MAX_VALUES = 20_000
# A raw answer rendered on the services' event loop holds up every call behind it: up to about 1.4 ms.
AT_ONCE_MAX_VALUES = 2_000


def from_memory(
    recent: RecentWrites,
    equipment: RecordType,
    site_id: int,
    record_id: int,
    window: Window,
    horizon: int,
    limit: int,
    max_values: int = MEMORY_RENDER_MAX_VALUES,
) -> records_pb2.Records | None:
    """A production read's answer from the hot tier, when it provably holds every record of the window
    and a raw answer renders at most `max_values` values."""
    if not answers(window.aggregation):
        return None
    start = horizon if window.start is None else max(window.start, horizon)
    records = recent.read(equipment.name, site_id, record_id, start, window.end)
    if records is None:
        return None
    if window.aggregation is None and min(len(records.timestamps), limit) * len(equipment.attributes) > max_values:
        return None
    results, count, next_from = render(equipment, record_id, records, window.aggregation, window.period_ms, limit)
    return records_pb2.Records(results_json=results, count=count, next_from=next_from)


class RecentReads(Protocol):
    """What the query service asks of the ingest's recent writes: in its process, or of its replicas."""

    def answer_at_once(
        self, equipment: RecordType, request: query_pb2.GetProductionRequest, window: Window, horizon: int, limit: int
    ) -> records_pb2.Records | None:
        """The answer from memory if it is at hand without waiting on anything (on the event loop), else None."""

    def answer_or_sync(
        self, equipment: RecordType, request: query_pb2.GetProductionRequest, window: Window, horizon: int, limit: int
    ) -> records_pb2.Records | None:
        """The answer from memory, or None once every acknowledged record of the read is in the store."""

    def sync(self, equipment: RecordType, request: query_pb2.GetProductionRequest, window: Window | None) -> None:
        """Returns once every acknowledged record of the read's series in the window (None: any) is in the store."""

    def sync_all(self) -> None:
        """Returns once every acknowledged record is in the store (reads across series: inventories, actuals)."""


class InProcess:
    """The ingest service's recent writes in this very process (`serve all`)."""

    def __init__(self, recent: RecentWrites) -> None:
        self._recent = recent

    def answer_at_once(
        self, equipment: RecordType, request: query_pb2.GetProductionRequest, window: Window, horizon: int, limit: int
    ) -> records_pb2.Records | None:
        return from_memory(self._recent, equipment, request.site_id, request.id, window, horizon, limit, AT_ONCE_MAX_VALUES)

    def answer_or_sync(
        self, equipment: RecordType, request: query_pb2.GetProductionRequest, window: Window, horizon: int, limit: int
    ) -> records_pb2.Records | None:
        answer = from_memory(self._recent, equipment, request.site_id, request.id, window, horizon, limit)
        if answer is None:
            self.sync(equipment, request, window)
        return answer

    def sync(self, equipment: RecordType, request: query_pb2.GetProductionRequest, window: Window | None) -> None:
        start, end = (None, None) if window is None else (window.start, window.end)
        self._recent.sync(equipment.name, request.site_id, request.id, start, end)

    def sync_all(self) -> None:
        self._recent.sync_all()
