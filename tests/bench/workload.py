"""The one dataset every system receives, and its encodings.

meter-3p records: N equipments sampled every second, generated
deterministically so storecast, the peers and the direct engine run store
exactly the same values. Records are ordered time-major (every equipment's
record for second 0, then second 1, ...), the way a site pushes its meters,
and cut into batches of a fixed record count.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property

import msgspec
import numpy as np

from storecast.catalog import EQUIPMENT_TYPES

EQUIPMENT_TYPE = "meter-3p"
ATTRIBUTES: tuple[str, ...] = tuple(a.name for a in EQUIPMENT_TYPES[EQUIPMENT_TYPE].attributes)
MEASUREMENT = "meter3p"
STEP_MS = 1_000
BUCKET_MS = 15 * 60 * 1_000
# Every system first takes this many records somewhere the measured data never goes
# (another site, database or measurement), untimed: a fresh process pays one-off
# costs on its first insert (lazy imports, first pipelines) that are not throughput.
WARMUP_RECORDS = 1_000
WARMUP_SITE_ID = 99
WARMUP_MEASUREMENT = "warmup"

# (base, amplitude, noise) per attribute family: plausible magnitudes, so the
# compressors see realistic mantissas rather than zeros or pure noise.
_SHAPES = {"p": (50.0, 10.0, 0.5), "q": (0.0, 1.0, 0.2), "i": (0.5, 0.1, 0.01), "u": (400.0, 2.0, 0.3), "f": (50.0, 0.02, 0.005)}


def _shape(attribute: str) -> tuple[float, float, float]:
    return _SHAPES[attribute.rsplit("_", 1)[-1]]


def base_value(attribute: str) -> float:
    """A plausible constant for an attribute (its family's base), for records whose values do not matter."""
    return _shape(attribute)[0]


def recent_aligned_start_ms(days_ago: int = 2) -> int:
    """A start a few days back, on a 15-minute boundary.

    Recent, because VictoriaMetrics drops samples older than its retention
    (one month by default); aligned, so every system cuts the same buckets.
    """
    now_ms = int(time.time() * 1000)
    start = now_ms - days_ago * 86_400_000
    return start - start % BUCKET_MS


@dataclass(frozen=True)
class Dataset:
    site_id: int
    equipment_ids: tuple[int, ...]
    start_ms: int
    seconds: int
    batch_records: int = 5_000
    seed: int = 20261123

    @property
    def records(self) -> int:
        return len(self.equipment_ids) * self.seconds

    @property
    def end_ms(self) -> int:
        """Exclusive end of the range."""
        return self.start_ms + self.seconds * STEP_MS

    @property
    def expected_buckets(self) -> int:
        return -(-self.seconds * STEP_MS // BUCKET_MS)

    @cached_property
    def columns(self) -> dict[str, np.ndarray]:
        """timestamp, id and each attribute, one array each, time-major."""
        equipments = len(self.equipment_ids)
        offsets = np.arange(self.seconds, dtype=np.int64)
        timestamps = np.repeat(self.start_ms + offsets * STEP_MS, equipments)
        ids = np.tile(np.asarray(self.equipment_ids, dtype=np.int64), self.seconds)
        rng = np.random.default_rng(self.seed)
        phase = np.tile(np.arange(equipments, dtype=np.float64), self.seconds) * 0.7
        angle = 2 * np.pi * np.repeat(offsets, equipments) / 3_600.0 + phase
        columns: dict[str, np.ndarray] = {"timestamp": timestamps, "id": ids}
        for attribute in ATTRIBUTES:
            base, amplitude, noise = _shape(attribute)
            values = base + amplitude * np.sin(angle) + rng.normal(0.0, noise, self.records)
            columns[attribute] = np.round(values, 2)
        return columns

    def batch_bounds(self) -> Iterator[tuple[int, int]]:
        for start in range(0, self.records, self.batch_records):
            yield start, min(start + self.batch_records, self.records)


def json_body(dataset: Dataset, start: int, stop: int) -> bytes:
    """The v1 PUT body, {"values": [...]}, of records [start, stop[."""
    names = ("timestamp", "id", *ATTRIBUTES)
    columns = [dataset.columns[name][start:stop].tolist() for name in names]
    return msgspec.json.encode({"values": [dict(zip(names, row)) for row in zip(*columns)]})


def json_bodies(dataset: Dataset) -> list[bytes]:
    return [json_body(dataset, start, stop) for start, stop in dataset.batch_bounds()]


def line_protocol_body(dataset: Dataset, start: int, stop: int, measurement: str = MEASUREMENT) -> bytes:
    """Influx line protocol (ms precision) of records [start, stop[: tag id, 13 float fields."""
    timestamps = dataset.columns["timestamp"][start:stop].tolist()
    ids = dataset.columns["id"][start:stop].tolist()
    fields = [dataset.columns[name][start:stop].tolist() for name in ATTRIBUTES]
    lines = []
    for row, (timestamp, equipment) in enumerate(zip(timestamps, ids)):
        # repr() keeps the shortest round-trip text and always a '.', so no field reads as an integer.
        field_text = ",".join(f"{name}={column[row]!r}" for name, column in zip(ATTRIBUTES, fields))
        lines.append(f"{measurement},id={equipment} {field_text} {timestamp}")
    return ("\n".join(lines) + "\n").encode()


def line_protocol_bodies(dataset: Dataset) -> list[bytes]:
    return [line_protocol_body(dataset, start, stop) for start, stop in dataset.batch_bounds()]


def insert_columns(dataset: Dataset, start: int, stop: int, site_id: int) -> list[list[int | float]]:
    """Column lists of records [start, stop[ in the storecast table's order: site_id, id, timestamp, attributes."""
    columns: list[list[int | float]] = [[site_id] * (stop - start)]
    return columns + [dataset.columns[name][start:stop].tolist() for name in ("id", "timestamp", *ATTRIBUTES)]


def insert_batches(dataset: Dataset) -> list[list[list[int | float]]]:
    return [insert_columns(dataset, start, stop, dataset.site_id) for start, stop in dataset.batch_bounds()]


INSERT_COLUMNS: tuple[str, ...] = ("site_id", "id", "timestamp", *ATTRIBUTES)


class WriterBodies:
    """Fresh 1,000-record PUT bodies for one equipment, each later in time than the last.

    Built on demand (about a millisecond each) because the concurrency phase
    runs for a fixed time, not a fixed count.
    """

    def __init__(self, equipment_id: int, start_ms: int, records: int, seed: int) -> None:
        self._equipment_id = equipment_id
        self._next_ms = start_ms
        self._records = records
        rng = np.random.default_rng(seed)
        self._values = [
            dict(zip(ATTRIBUTES, row))
            for row in zip(*(np.round(_shape(a)[0] + rng.normal(0.0, 1.0, records), 2).tolist() for a in ATTRIBUTES))
        ]

    def next_body(self) -> bytes:
        start = self._next_ms
        self._next_ms += self._records * STEP_MS
        values = [
            {"timestamp": start + index * STEP_MS, "id": self._equipment_id, **attributes}
            for index, attributes in enumerate(self._values)
        ]
        return msgspec.json.encode({"values": values})
