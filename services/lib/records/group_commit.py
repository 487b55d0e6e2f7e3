"""Group commit: concurrent PUTs to one table stored together, in one insert.

ClickHouse is built for few large inserts: on the embedded engine one insert
costs 5-15 ms of engine time whatever its size, and every insert is a new part
to merge. A fleet of devices each PUTting one record per request would spend
all of it there. So each table has a committer: a request that passed
validation hands its columns over and waits; the committer's thread takes
every request waiting, stores them as one block (one INSERT, one part, hence
all or nothing) and answers each of them with the insert's outcome.

Timing, without a fixed window:
- A request that finds the committer idle and nobody expected is inserted at
  once: a lone client never waits for company that does not come.
- Requests that arrive while an insert runs form the next batch.
- Under concurrency the committer waits up to `gather_s` for the clients it
  expects: those the previous insert answered (sequential clients come back
  with their next request) plus those that arrived during that insert. So
  clients that would otherwise settle into two cohorts, each waiting for the
  other's insert, join one.

Within a batch the last occurrence of a key wins, in arrival order, as within
one request: a PUT answered 201 before another was sent is never overwritten
by the older one.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass

from opentelemetry.context import Context

from services.lib.records.columns import Columns, concat, last_occurrences, take
from services.lib.rpc.metrics import BATCH_REQUESTS, BATCH_ROWS
from storecast.tracing import capture, commit_span

log = logging.getLogger("storecast.batching")

# The columns of one request's rows, site_id first: one sequence per insert column.
# Stores one block of columns in one insert (raises if the store refused it).
InsertBlock = Callable[[Columns], None]


# Where concurrent PUTs are gathered into one insert.
GROUP = "group"  # here, by a committer per table (the default)
SERVER = "server"  # by ClickHouse: async_insert with wait, one INSERT query per request
BOTH = "both"  # here, then by ClickHouse across every replica writing to it
OFF = "off"  # nowhere: one INSERT, one part per request
BATCH_MODES = (GROUP, SERVER, BOTH, OFF)

# What SERVER asks of each INSERT: buffered with the other requests' rows, and
# answered once the buffer holding it is stored (or failed).
SERVER_BATCHING_SETTINGS = {"async_insert": 1, "wait_for_async_insert": 1}


@dataclass(frozen=True, slots=True)
class BatchSettings:
    mode: str = GROUP
    # A batch holds at most this many rows (a larger request is inserted alone).
    max_rows: int = 100_000
    gather_s: float = 0.005

    def __post_init__(self) -> None:
        if self.mode not in BATCH_MODES:
            raise ValueError(f"batch mode must be one of {', '.join(BATCH_MODES)}, got {self.mode!r}")

    @property
    def grouped_here(self) -> bool:
        return self.mode in (GROUP, BOTH)

    def insert_settings(self) -> dict[str, int]:
        return SERVER_BATCHING_SETTINGS if self.mode in (SERVER, BOTH) else {}


class BatchInsertError(Exception):
    """The insert of a batch failed; each request in it gets one of its own, caused by the store's error."""


@dataclass(slots=True)
class _Pending:
    columns: Columns
    rows: int
    # The store's error, or None once stored. A result, not the future's exception:
    # an exception object raised in every waiting thread would gather all their frames.
    done: Future[BaseException | None]
    # The request's trace context, for the commit's span on the committer's thread (None: tracing off).
    trace: Context | None = None


class Committer:
    """The group commit of one table; `key_columns` index the columns forming a row's key."""

    def __init__(self, name: str, insert: InsertBlock, key_columns: Sequence[int], settings: BatchSettings) -> None:
        self._name = name
        self._insert = insert
        self._key_columns = tuple(key_columns)
        self._settings = settings
        self._pending: deque[_Pending] = deque()
        self._arrived = threading.Condition()
        self._expected = 1
        self._thread: threading.Thread | None = None
        self._batch_requests = BATCH_REQUESTS.labels(name)
        self._batch_rows = BATCH_ROWS.labels(name)

    def store(self, columns: Columns) -> None:
        """Returns once the rows are stored with the batch holding them; raises that batch's error."""
        rows = len(columns[0])
        if not self._settings.grouped_here or rows >= self._settings.max_rows:
            self._observe(1, rows)
            self._insert(columns)  # alone anyway: no hand-over to the committer's thread
            return
        pending = _Pending(columns, rows, Future(), capture())
        with self._arrived:
            self._pending.append(pending)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=f"commit-{self._name}", daemon=True)
                self._thread.start()
            self._arrived.notify()
        error = pending.done.result()
        if error is not None:
            # The cause and its traceback are logged once, by the committer.
            raise BatchInsertError(f"the {self._name} insert holding this request failed: {error!r}") from None

    def _run(self) -> None:
        # A daemon thread: at shutdown the gRPC server drains the requests
        # waiting here, and this thread serves them until they are answered.
        while True:
            self._commit(self._next_batch())

    def _next_batch(self) -> list[_Pending]:
        with self._arrived:
            while not self._pending:
                self._arrived.wait()
            if self._expected > 1:
                deadline = time.monotonic() + self._settings.gather_s
                while len(self._pending) < self._expected and self._rows_waiting() < self._settings.max_rows:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    self._arrived.wait(left)
            batch: list[_Pending] = []
            rows = 0
            while self._pending and (not batch or rows + self._pending[0].rows <= self._settings.max_rows):
                rows += self._pending[0].rows
                batch.append(self._pending.popleft())
            return batch

    def _rows_waiting(self) -> int:
        return sum(p.rows for p in self._pending)

    def _commit(self, batch: list[_Pending]) -> None:
        error: BaseException | None = None
        self._observe(len(batch), sum(p.rows for p in batch))
        try:
            with commit_span(self._name, [p.trace for p in batch]):
                self._insert(self._merge([p.columns for p in batch]))
        except BaseException as raised:  # every waiter gets the store's answer, whatever it was
            error = raised
            log.error("the %s insert of %d requests failed", self._name, len(batch), exc_info=raised)
        with self._arrived:
            self._expected = len(batch) + len(self._pending)
        for pending in batch:
            pending.done.set_result(error)

    def _observe(self, requests: int, rows: int) -> None:
        self._batch_requests.observe(requests)
        self._batch_rows.observe(rows)

    def _merge(self, requests: list[Columns]) -> Columns:
        """One block of every request's rows, in arrival order; of rows sharing a key, the last."""
        if len(requests) == 1:
            return requests[0]
        merged: Columns = [concat([columns[i] for columns in requests]) for i in range(len(requests[0]))]
        kept = last_occurrences(*(merged[i] for i in self._key_columns))
        return merged if kept is None else take(merged, kept)
