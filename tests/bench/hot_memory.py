"""The hot tier's memory for a fleet's last hour: N series x 1 h at 1 s x 13 float attributes.

Run as a process of its own (the bench's own objects would blur its memory
figures): fills a HotTier (services/lib/recent/hot.py) as the ingest service
does, one acknowledged 1-record PUT per series per second, time-major, each
second's records acknowledged at their own timestamp (so all of the hour is
within the window), and prints JSON: the tier's own byte count (`.nbytes`, what
STORECAST_HOT_MAX_BYTES bounds: the arrays' data plus the tier's fixed
overhead per chunk and per series) and the process's RSS growth (what the
process really holds: the arrays, their headers, the chunk and series objects,
the allocator's slack), both taken once the hour is in and before any read
(whose joined copy counts too), and both also scaled to 1,000 series. The two
should agree within a few per cent: the overhead constants in
services/lib/recent/hot.py come from this measure.

    .venv/bin/python tests/bench/hot_memory.py [--series 1000] [--seconds 3600]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import time
from typing import Any

import numpy as np
from processes import rss_bytes
from workload import EQUIPMENT_TYPE, STEP_MS

from services.lib.recent.hot import HotTier
from storecast.catalog import EQUIPMENT_TYPES
from storecast.env import setting

MIB = 1024 * 1024
PER_SERIES = 1_000  # the figure the report states: per 1,000 series


def measure(series: int, seconds: int, site_id: int = 1) -> dict[str, Any]:
    equipment = EQUIPMENT_TYPES[EQUIPMENT_TYPE]
    attributes = len(equipment.attributes)
    window_s = float(setting("STORECAST_HOT_WINDOW"))
    max_bytes = int(setting("STORECAST_HOT_MAX_BYTES"))
    if seconds > window_s:
        raise ValueError(f"{seconds} s would not fit in the window of {window_s:g} s: the tier would let records go")
    ids = np.arange(1, series + 1, dtype=np.uint32)
    rng = np.random.default_rng(1)
    # The hour ends now: its records are recent, as the recent reads' are.
    first_ms = (time.time_ns() // 1_000_000 // STEP_MS - seconds + 1) * STEP_MS
    gc.collect()
    rss_before = rss_bytes(os.getpid())
    hot = HotTier([equipment], window_s, max_bytes)
    started = time.perf_counter()
    for second in range(seconds):
        stamp = first_ms + second * STEP_MS
        timestamps = np.full(series, stamp, dtype=np.int64)
        columns = [np.round(50.0 + rng.normal(0.0, 1.0, series), 2) for _ in range(attributes)]
        hot.add(EQUIPMENT_TYPE, site_id, ids, timestamps, columns, generation=second + 1, now_ms=stamp)
    fill_s = time.perf_counter() - started
    gc.collect()
    rss_growth = rss_bytes(os.getpid()) - rss_before
    nbytes = hot.nbytes
    # As the flusher's first insert of each series does; then a read shows what memory holds of one.
    hot.establish(EQUIPMENT_TYPE, {(site_id, int(record_id)): None for record_id in ids})
    kept = hot.read(EQUIPMENT_TYPE, site_id, int(ids[0]), None, None)
    scale = PER_SERIES / series
    return {
        "series": series,
        "seconds": seconds,
        "attributes": attributes,
        "records": series * seconds,
        "records_kept_one_series": None if kept is None else len(kept.timestamps),
        "nbytes": nbytes,
        "rss_growth_bytes": rss_growth,
        "per_1000_series_nbytes_mib": round(nbytes * scale / MIB, 1),
        "per_1000_series_rss_mib": round(rss_growth * scale / MIB, 1),
        "max_bytes": max_bytes,
        "window_s": window_s,
        "fill_seconds": round(fill_s, 1),
        "records_added_per_s": round(series * seconds / fill_s, 0),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--series", type=int, default=PER_SERIES)
    parser.add_argument("--seconds", type=int, default=3_600)
    args = parser.parse_args(argv)
    if args.series < 1 or args.seconds < 1:
        parser.error("--series and --seconds must be positive")
    print(json.dumps(measure(args.series, args.seconds)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
