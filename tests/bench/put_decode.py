"""Decoding and validating PUT bodies in process, as the services do, before any store: CPU ms per body.

- a meter-3p body of 5,000 records, integer timestamps, and the same with float
  timestamps (`1.7e12` written `….0`: the path that decodes again, docs/api/v1.md §2);
- a solar forecast body of 52 vectors of 96 periods, in time order and reversed.

Standalone: .venv/bin/python tests/bench/put_decode.py [--rounds 100]
"""

from __future__ import annotations

import argparse
import json
import random
import time
from collections.abc import Callable
from functools import partial
from typing import Any

from services.ingest.service import RecordInput
from services.lib.store.schema import FORECAST_TABLES
from services.vector.write import VectorWriter
from storecast.catalog import EQUIPMENT_TYPES, FORECAST_TYPES

T0 = 1_700_000_000_000


def meter_3p_body(records: int, stamp: Callable[[int], Any], rng: random.Random) -> bytes:
    names = [a.name for a in EQUIPMENT_TYPES["meter-3p"].attributes]
    items = [
        {"timestamp": stamp(T0 + 1000 * i), "id": 7, **{n: round(rng.uniform(-500, 500), 3) for n in names}}
        for i in range(records)
    ]
    return json.dumps({"values": items}).encode()


def solar_body(vectors: int, periods: int, ascending: bool, rng: random.Random) -> bytes:
    order = list(range(periods)) if ascending else list(reversed(range(periods)))
    items = [
        {
            "creation_timestamp": T0 + v,
            "id": 3,
            "values": [{"timestamp": T0 + 900_000 * p, "p": rng.uniform(0, 9), "quality": 1} for p in order],
        }
        for v in range(vectors)
    ]
    return json.dumps({"values": items}).encode()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=100)
    rounds = parser.parse_args().rounds
    rng = random.Random(1)
    meter = RecordInput(EQUIPMENT_TYPES["meter-3p"])
    solar = VectorWriter(FORECAST_TABLES["solar"], FORECAST_TYPES["solar"])
    cases: dict[str, Callable[[], object]] = {}
    for name, stamp in (("int", int), ("float", float)):
        cases[f"meter-3p, 5,000 records, {name} timestamps"] = partial(meter.columns, meter_3p_body(5_000, stamp, rng))
    for name, ascending in (("in time order", True), ("reversed", False)):
        cases[f"solar, 52 vectors x 96 periods, {name}"] = partial(solar.columns, 1, solar_body(52, 96, ascending, rng))
    for name, run in cases.items():
        run()
        times = []
        for _ in range(rounds):
            # CPU time: the machine's other load does not count.
            start = time.process_time()
            run()
            times.append(time.process_time() - start)
        times.sort()
        print(f"{name}: min {times[0] * 1e3:.2f} ms, median {times[len(times) // 2] * 1e3:.2f} ms")


if __name__ == "__main__":
    main()
