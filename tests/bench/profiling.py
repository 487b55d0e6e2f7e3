"""Where storecast's time goes: py-spy samples of its Python threads, and CPU per thread.

py-spy sees Python threads only; the ClickHouse engine runs much of a query
on its own native threads, invisible to it. So each profiled phase also
reads every thread's CPU time from /proc (utime + stime), grouped by role:
the gateway's event loop, the gRPC service workers, gRPC's core threads and
the engine's threads. py-spy runs --nonblocking (it never pauses storecast),
and --native is left out: chDB's native frames are unsymbolized and native
unwinding made py-spy fall seconds behind.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

PY_SPY_VERSION = "0.4.3"
_LINE_NUMBER = re.compile(r":\d+\)$")


def py_spy_path() -> str:
    """py-spy from this venv, installed from PyPI when missing."""
    beside = Path(sys.executable).with_name("py-spy")
    if not beside.exists() and shutil.which("py-spy") is None:
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", f"py-spy=={PY_SPY_VERSION}"], check=True)
    return str(beside) if beside.exists() else str(shutil.which("py-spy"))


class Recorder:
    """`py-spy record` on one pid for the duration of a `with` block, in collapsed-stack form."""

    def __init__(self, pid: int, output: Path, rate: int = 100) -> None:
        self.output = output
        self.pid = pid
        self._argv = [
            py_spy_path(), "record", "--pid", str(pid), "--format", "raw", "--output", str(output),
            "--rate", str(rate), "--threads", "--nonblocking",
        ]  # fmt: skip
        self.cpu_before: dict[int, tuple[str, int]] = {}
        self.cpu_after: dict[int, tuple[str, int]] = {}
        self.wall_s = 0.0
        self._started = 0.0
        self._process: subprocess.Popen[bytes] | None = None
        self._log = output.with_suffix(".py-spy.log")

    def __enter__(self) -> Recorder:
        self.output.parent.mkdir(parents=True, exist_ok=True)
        with self._log.open("wb") as log:
            self._process = subprocess.Popen(self._argv, stdout=log, stderr=subprocess.STDOUT)
        time.sleep(0.5)  # py-spy attaches before the phase starts
        self.cpu_before = thread_cpu_ticks(self.pid)
        self._started = time.perf_counter()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None) -> None:
        assert self._process is not None
        self.wall_s = time.perf_counter() - self._started
        self.cpu_after = thread_cpu_ticks(self.pid)
        # SIGINT makes py-spy stop sampling and write its output.
        self._process.send_signal(signal.SIGINT)
        try:
            self._process.wait(timeout=120)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()


def _frame_key(frame: str) -> str:
    """`function (file:line)` without the line, so a function's samples add up."""
    return _LINE_NUMBER.sub(")", frame.strip())


_THREAD_FRAME = re.compile(r"^thread \((?P<tid>\d+)\)(?::\s*(?P<name>.*))?$")


@dataclass(frozen=True)
class Sample:
    tid: int
    thread: str
    frames: list[str]  # root to leaf
    count: int


def read_samples(path: Path) -> list[Sample]:
    """py-spy's collapsed stacks (--threads): `thread (TID): NAME;frame;...;leaf COUNT`."""
    samples = []
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = stack.split(";")
        match = _THREAD_FRAME.match(frames[0].strip())
        if match is None:
            continue
        samples.append(Sample(int(match["tid"]), (match["name"] or "").strip(), [_frame_key(f) for f in frames[1:]], int(count)))
    return samples


def thread_cpu_ticks(pid: int) -> dict[int, tuple[str, int]]:
    """tid -> (comm, utime + stime in clock ticks) for every thread of the process."""
    threads = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            stat = (task / "stat").read_text()
        except OSError:
            continue  # the thread ended while we looked
        comm = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()
        # Fields after the name start at `state` (3rd of stat(5)); utime and stime are the 14th and 15th.
        threads[int(task.name)] = (comm, int(fields[11]) + int(fields[12]))
    return threads


def _thread_group(comm: str, python_name: str | None) -> str:
    if python_name == "MainThread":
        return "gateway: asyncio loop (MainThread)"
    if python_name is not None and python_name.startswith("rpc"):
        return "gRPC service workers (rpc_*)"
    if python_name is not None:
        return f"other Python threads ({python_name.split(' ')[0]}...)"
    if comm.startswith(("grpc", "event_engine")):
        return "gRPC core threads"
    if comm == "storecast":
        return "other Python threads"
    return "ClickHouse engine threads"


# Frames every stack shares (thread start, event loop, executor): they say nothing about where time goes.
_PLUMBING = (
    "(threading.py)", "(concurrent/futures/thread.py)", "(asyncio/runners.py)", "(asyncio/base_events.py)",
    "(asyncio/events.py)", "(storecast)", "(storecast/cli.py)", "(storecast/__main__.py)",
)  # fmt: skip


def summarize(recorder: Recorder, title: str, top: int = 15) -> str:
    samples = read_samples(recorder.output)
    names = {sample.tid: sample.thread for sample in samples}
    tick = os.sysconf("SC_CLK_TCK")
    ticks_by_group: Counter[str] = Counter()
    for tid, (comm, after) in recorder.cpu_after.items():
        before = recorder.cpu_before.get(tid, (comm, 0))[1]
        ticks_by_group[_thread_group(comm, names.get(tid))] += after - before
    cpu_by_group = {group: ticks / tick for group, ticks in ticks_by_group.most_common()}  # seconds, busiest first
    process_cpu = sum(cpu_by_group.values())
    total = sum(sample.count for sample in samples)
    busy = process_cpu / max(recorder.wall_s, 1e-9)
    lines = [
        f"== {title}: {recorder.wall_s:.2f} s wall, {process_cpu:.2f} s CPU in storecast ({busy:.2f} cores busy),"
        f" {total} py-spy samples",
        "-- CPU by thread group (/proc/PID/task/*/stat)",
    ]
    lines += [
        f"{seconds:8.2f} s {100 * seconds / max(process_cpu, 1e-9):5.1f}%  {group}" for group, seconds in cpu_by_group.items()
    ]
    if total == 0:
        return "\n".join(lines) + "\n"
    by_thread: Counter[str] = Counter()
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    for sample in samples:
        by_thread[_thread_group("storecast", sample.thread)] += sample.count
        if sample.frames:
            own[sample.frames[-1]] += sample.count
        for frame in set(sample.frames):
            if not frame.endswith(_PLUMBING):
                inclusive[frame] += sample.count
    lines.append("-- py-spy samples (Python threads on CPU) by thread")
    lines += [f"{100 * n / total:6.1f}%  {group}" for group, n in by_thread.most_common()]
    lines.append("-- self time (leaf frame), share of py-spy samples")
    lines += [f"{100 * n / total:6.1f}%  {frame}" for frame, n in own.most_common(top)]
    lines.append("-- inclusive time (frame anywhere on the stack, thread and event-loop plumbing left out)")
    lines += [f"{100 * n / total:6.1f}%  {frame}" for frame, n in inclusive.most_common(top + 10)]
    return "\n".join(lines) + "\n"
