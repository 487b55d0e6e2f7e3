"""Threads that work for later, not for a caller waiting on an answer."""

from __future__ import annotations

import logging
import os
import threading

log = logging.getLogger("storecast.background")

# Linux's per-thread nice value (0 is the default, 19 the lowest priority).
BACKGROUND_NICENESS = 10


def lower_priority() -> None:
    """The calling thread yields the cores to the threads answering requests and takes what they
    leave: a flush or a rollup round running beside 16 clients' PUTs took their p99 from about 26 to
    28 ms and 5-8% of their rate in `make bench`'s recent shape (docs/architecture/recent-writes.md).
    The engine's own threads, which run the thread's statements, keep the process's priority."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), BACKGROUND_NICENESS)
    except OSError as error:  # not Linux-like: the thread runs at the process's priority
        log.debug("cannot lower the priority of thread %s: %s", threading.current_thread().name, error)
