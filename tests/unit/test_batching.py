"""The group commit's rules, with an insert function standing in for the store's."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from services.lib.records.columns import Columns
from services.lib.records.group_commit import BOTH, GROUP, OFF, SERVER, BatchInsertError, BatchSettings, Committer


class Recorder:
    """Records each block it is asked to insert; can be told to refuse, or to take its time."""

    def __init__(self, delay_s: float = 0.0) -> None:
        self.blocks: list[Columns] = []
        self.refuse: Exception | None = None
        self.delay_s = delay_s
        self.lock = threading.Lock()

    def __call__(self, columns: Columns) -> None:
        time.sleep(self.delay_s)
        if self.refuse is not None:
            raise self.refuse
        with self.lock:
            self.blocks.append([list(column) for column in columns])


def rows(site: int, *keys: tuple[int, int, float]) -> Columns:
    """Columns (site_id, id, timestamp, value) of (id, timestamp, value) rows."""
    return [[site] * len(keys), [k[0] for k in keys], [k[1] for k in keys], [k[2] for k in keys]]


def committer(recorder: Recorder, **settings: Any) -> Committer:
    return Committer("t", recorder, (0, 1, 2), BatchSettings(**settings))


def stored_rows(recorder: Recorder) -> list[tuple[Any, ...]]:
    return [row for block in recorder.blocks for row in zip(*block, strict=True)]


def test_a_lone_request_is_inserted_at_once_and_alone() -> None:
    recorder = Recorder()
    commit = committer(recorder, gather_s=10.0)
    started = time.monotonic()
    commit.store(rows(1, (7, 1000, 1.5)))
    commit.store(rows(1, (7, 2000, 2.5)))
    # No window to wait out: the committer expected nobody else.
    assert time.monotonic() - started < 1.0
    assert recorder.blocks == [[[1], [7], [1000], [1.5]], [[1], [7], [2000], [2.5]]]


def concurrently(commit: Committer, requests: Sequence[Columns]) -> list[BaseException | None]:
    def one(columns: Columns) -> BaseException | None:
        try:
            commit.store(columns)
        except Exception as error:
            return error
        return None

    with ThreadPoolExecutor(len(requests)) as pool:
        return list(pool.map(one, requests))


def test_concurrent_requests_share_inserts_and_every_row_is_stored_once() -> None:
    recorder = Recorder(delay_s=0.02)
    commit = committer(recorder)
    requests = [rows(site, (1, t, float(t)), (2, t, float(t))) for site in range(4) for t in range(8)]
    assert concurrently(commit, requests) == [None] * len(requests)
    assert len(recorder.blocks) < len(requests)
    assert sorted(stored_rows(recorder)) == sorted(row for columns in requests for row in zip(*columns, strict=True))


def wait_for(condition: Callable[[], bool], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.001)


def test_across_requests_of_one_batch_the_last_to_arrive_wins() -> None:
    gate = threading.Event()
    recorder = Recorder()

    def insert_at_the_gate(columns: Columns) -> None:
        gate.wait()
        recorder(columns)

    commit = Committer("t", insert_at_the_gate, (0, 1, 2), BatchSettings(gather_s=0.0))
    # The first insert holds the committer (at the gate) while the next three arrive, one after another.
    threads = [threading.Thread(target=commit.store, args=(rows(1, (9, 9, 0.0)),))]
    threads[0].start()
    wait_for(lambda: not commit._pending)  # taken by the committer
    for arrived, value in enumerate((1.0, 2.0, 3.0), start=1):
        threads.append(threading.Thread(target=commit.store, args=(rows(1, (5, 100, value), (5, 100 + int(value), value)),)))
        threads[-1].start()
        wait_for(lambda: len(commit._pending) == arrived)
    gate.set()
    for thread in threads:
        thread.join()
    second_block = list(zip(*recorder.blocks[1], strict=True))
    assert [row for row in second_block if row[2] == 100] == [(1, 5, 100, 3.0)]
    assert sorted(row[2] for row in second_block) == [100, 101, 102, 103]


def test_a_refused_insert_fails_every_request_in_it_and_the_next_one_succeeds() -> None:
    recorder = Recorder(delay_s=0.02)
    recorder.refuse = RuntimeError("disk full")
    commit = committer(recorder)
    outcomes = concurrently(commit, [rows(1, (i, 1, 1.0)) for i in range(6)])
    assert all(isinstance(outcome, BatchInsertError) and "disk full" in str(outcome) for outcome in outcomes)
    assert recorder.blocks == []
    recorder.refuse = None
    commit.store(rows(1, (1, 1, 1.0)))
    assert stored_rows(recorder) == [(1, 1, 1, 1.0)]


def test_a_batch_never_exceeds_max_rows_and_a_larger_request_goes_alone() -> None:
    recorder = Recorder(delay_s=0.02)
    commit = committer(recorder, max_rows=5)
    requests = [rows(1, *((i, t, 0.0) for t in range(2))) for i in range(10)] + [rows(2, *((0, t, 0.0) for t in range(7)))]
    assert concurrently(commit, requests) == [None] * len(requests)
    sizes = sorted(len(block[0]) for block in recorder.blocks)
    assert sizes[-1] == 7 and all(size <= 5 for size in sizes[:-1])
    assert len(stored_rows(recorder)) == 27


def test_off_inserts_each_request_in_its_own_call() -> None:
    recorder = Recorder(delay_s=0.01)
    commit = committer(recorder, mode=OFF)
    assert concurrently(commit, [rows(1, (i, 1, 1.0)) for i in range(5)]) == [None] * 5
    assert len(recorder.blocks) == 5


def test_both_groups_here_and_asks_the_server_to_gather_too() -> None:
    recorder = Recorder(delay_s=0.02)
    commit = committer(recorder, mode=BOTH)
    assert concurrently(commit, [rows(1, (i, 1, 1.0)) for i in range(8)]) == [None] * 8
    assert len(recorder.blocks) < 8
    assert BatchSettings(mode=BOTH).insert_settings() == {"async_insert": 1, "wait_for_async_insert": 1}
    assert BatchSettings(mode=SERVER).insert_settings() == BatchSettings(mode=BOTH).insert_settings()
    assert BatchSettings(mode=GROUP).insert_settings() == {}


def test_an_unknown_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="batch mode"):
        BatchSettings(mode="sometimes")
    assert BatchSettings().mode == GROUP
