"""The flusher: its stop stores everything the log acknowledged, even what arrived during the
flush under way; its log entries keep their format."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import msgspec
import numpy as np
from clickhouse_connect.driver.client import Client

from services.ingest.flusher import Flusher, Records
from services.ingest.wal import WriteAheadLog
from services.lib.config import FlushSettings
from services.lib.recent.hot import HotTier, SeriesKey
from services.lib.records.columns import Columns
from storecast.catalog import EQUIPMENT_TYPES

METER = EQUIPMENT_TYPES["meter"]
TABLE = "flusher_stop_meter"


def _records(timestamp: int) -> Records:
    columns: Columns = [(timestamp,), (1,), *[(1.0,) for _ in METER.attributes]]
    return Records.of(METER.name, 7, columns)


def _nothing_stored(equipment: str, keys: list[SeriesKey]) -> dict[SeriesKey, int | None]:
    return dict.fromkeys(keys)


def test_a_put_acknowledged_during_a_flush_is_stored_by_the_stop(tmp_path: Path, engine: Client) -> None:
    attributes = ", ".join(f"{a.name} Nullable(Float64)" for a in METER.attributes)
    engine.command(f"DROP TABLE IF EXISTS {TABLE}")
    engine.command(f"CREATE TABLE {TABLE} (site_id UInt32, timestamp Int64, id UInt32, {attributes}) ENGINE = Memory")
    first_insert_started, release_first_insert = threading.Event(), threading.Event()

    def insert(columns: Columns) -> None:
        if not first_insert_started.is_set():
            first_insert_started.set()
            assert release_first_insert.wait(30)
        engine.insert(TABLE, [list(column) for column in zip(*columns)])

    wal = WriteAheadLog(tmp_path, 1 << 20)
    flusher = Flusher(wal, {METER.name: insert}, _nothing_stored, HotTier([METER], 3600, 1 << 20), FlushSettings(0.01))
    flusher.start()
    asyncio.run(flusher.write(_records(1_000)))
    assert first_insert_started.wait(30)
    # Acknowledged while the first flush is still inserting; then the service stops.
    asyncio.run(flusher.write(_records(2_000)))
    stopper = threading.Thread(target=flusher.stop)
    stopper.start()
    while not flusher._stopping.is_set():
        stopper.join(0.001)
    release_first_insert.set()
    stopper.join(60)
    assert not stopper.is_alive()
    stored = engine.query(f"SELECT timestamp FROM {TABLE} ORDER BY timestamp").result_columns
    assert stored == [[1_000, 2_000]]
    assert list(wal.replay()) == []  # both segments released
    engine.command(f"DROP TABLE {TABLE}")
    wal.close()


def test_a_log_entry_round_trips_and_keeps_the_format_earlier_logs_hold() -> None:
    columns: Columns = [(5, 9), (1, 2), *[(1.5, None) for _ in METER.attributes]]
    records = Records.of(METER.name, 7, columns)
    # The layout every segment written so far holds: msgpack of each array's bytes.
    earlier = msgspec.msgpack.encode(
        (METER.name, 7, records.timestamps.tobytes(), records.ids.tobytes(), len(METER.attributes),
         b"".join(column.tobytes() for column in records.attributes))
    )  # fmt: skip
    assert records.encode() == earlier
    again = Records.decode(earlier)
    assert (again.equipment, again.site_id) == (METER.name, 7)
    assert again.timestamps.tolist() == [5, 9] and again.ids.tolist() == [1, 2]
    assert all(column[0] == 1.5 and np.isnan(column[1]) for column in again.attributes)
