"""Repeated timings and the statistics the report uses."""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

Result = TypeVar("Result")


@dataclass(frozen=True)
class Timed(Generic[Result]):
    """Wall-clock samples of one operation, in milliseconds, and the last result (for checks)."""

    samples_ms: list[float]
    last: Result
    # The first run (the warm-up's first, untimed in the samples): the one no cache of the
    # system has seen yet, whose answer a later run may be given from memory.
    first_ms: float | None = None

    @property
    def median_ms(self) -> float:
        return statistics.median(self.samples_ms)

    def as_json(self) -> dict[str, object]:
        return {
            **({} if self.first_ms is None else {"first_ms": round(self.first_ms, 3)}),
            "median_ms": round(self.median_ms, 3),
            "min_ms": round(min(self.samples_ms), 3),
            "max_ms": round(max(self.samples_ms), 3),
            "samples_ms": [round(s, 3) for s in self.samples_ms],
        }


def repeat(operation: Callable[[], Result], runs: int, warmup: int = 1) -> Timed[Result]:
    """Run `operation` warmup + runs times; only the last `runs` are timed samples.

    The warm-up run opens the keep-alive connection and fills the caches each
    system would have warm in service, so the median compares steady states.
    """
    if runs < 1:  # no samples, no median; and `last` is the result of a timed run
        raise ValueError(f"repeat needs at least one timed run, not {runs}")
    first_ms = None
    for _ in range(warmup):
        started = time.perf_counter()
        operation()
        first_ms = (time.perf_counter() - started) * 1000 if first_ms is None else first_ms
    samples: list[float] = []
    while True:
        started = time.perf_counter()
        last = operation()
        samples.append((time.perf_counter() - started) * 1000)
        if len(samples) == runs:
            return Timed(samples, last, first_ms)


def percentile(samples: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile; enough for latency distributions of hundreds of samples."""
    if not samples:
        return float("nan")
    ordered = sorted(samples)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


def rate_summary(
    clients: int, elapsed_s: float, latencies_ms: list[float], ok: int, errors: int, first_errors: list[str]
) -> dict[str, Any]:
    """The figures of a phase of concurrent clients: successes per second over its wall time, p50/p99."""
    return {
        "clients": clients,
        "seconds": round(elapsed_s, 2),
        "requests": len(latencies_ms),
        "requests_per_s": round(ok / elapsed_s, 1) if elapsed_s > 0 else None,
        "p50_ms": round(percentile(latencies_ms, 0.50), 2) if latencies_ms else None,
        "p99_ms": round(percentile(latencies_ms, 0.99), 2) if latencies_ms else None,
        "errors": errors,
        "first_errors": first_errors[:5],
    }
