"""The bulk phase's timed reads shared by storecast and the peers: aggregates as the writes
end, and raw reads of a few lengths with and without compression.

The 15-min average is timed right after the last write returns (for storecast, with
the last inserts' rollup spans still pending) and again 2 s after it (one rollup
round later), beside the engine's own raw aggregation in the same run. Raw reads
ask for the first 3,600 and all 20,000 records of one equipment (those the
dataset holds) with `Accept-Encoding: identity` and `gzip`: the time includes
reading the whole body and undoing its content coding, not parsing its JSON (on
either side: 52 ms of a 20,000-record answer); the wire size is what came over
the socket.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import httpx
from timing import repeat
from workload import Dataset

# Seconds after the last write at which the aggregate is timed again: a rollup round has run.
AFTER_WRITES_S = 2.0
RAW_RECORDS = (3_600, 20_000)
ENCODINGS = ("identity", "gzip")


class LastResponse:
    """An httpx response hook keeping the last response, for its headers and wire size."""

    def __init__(self) -> None:
        self.response: httpx.Response | None = None

    def __call__(self, response: httpx.Response) -> None:
        self.response = response

    def wire(self) -> dict[str, Any]:
        if self.response is None:
            raise RuntimeError("no response recorded")
        return {
            "wire_bytes": self.response.num_bytes_downloaded,
            "content_encoding": self.response.headers.get("content-encoding", "identity"),
        }


def listen(client: httpx.Client) -> LastResponse:
    last = LastResponse()
    client.event_hooks = {**client.event_hooks, "response": [*client.event_hooks.get("response", []), last]}
    return last


def aggregates_as_writes_end(aggregate: Callable[[], Any], written_at: float, runs: int) -> dict[str, Any]:
    """The aggregate timed at once (`written_at`: time.monotonic() when the last write returned), then from AFTER_WRITES_S on."""
    right_after = repeat(aggregate, runs)
    right_after_s = time.monotonic() - written_at
    time.sleep(max(0.0, written_at + AFTER_WRITES_S - time.monotonic()))
    later = repeat(aggregate, runs)
    return {
        "right_after_writes": {**right_after.as_json(), "seconds_after_writes_at_end": round(right_after_s, 3)},
        "after_2s": later.as_json(),
    }


def raw_by_length_and_encoding(
    client: httpx.Client, read: Callable[[Dataset], Any], dataset: Dataset, runs: int
) -> dict[str, dict[str, Any]]:
    """`read` of the first n records of one equipment, for each n of RAW_RECORDS the dataset holds, per encoding."""
    last = listen(client)
    default = client.headers.get("Accept-Encoding")
    results: dict[str, dict[str, Any]] = {}
    for records in (n for n in RAW_RECORDS if n <= dataset.seconds):
        shorter = replace(dataset, seconds=records)
        for encoding in ENCODINGS:
            client.headers["Accept-Encoding"] = encoding
            timed = repeat(lambda: read(shorter), runs)
            results[f"{records}_{encoding}"] = {**timed.as_json(), **last.wire()}
    if default is None:
        del client.headers["Accept-Encoding"]
    else:
        client.headers["Accept-Encoding"] = default
    return results
