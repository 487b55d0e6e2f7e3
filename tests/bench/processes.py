"""Servers the bench starts: ports, start and stop by process id, memory, disk."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from parts import covered_part_names, table_part_dirs


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]  # an AF_INET socket's name is (host, port)
        return port


@dataclass
class Server:
    """One server process the bench started, and where its output goes."""

    name: str
    process: subprocess.Popen[bytes]
    log: Path
    data_dir: Path
    base_url: str
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self, timeout_s: float = 60) -> int:
        """SIGTERM this process (and only it), then SIGKILL if it does not exit in time."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=timeout_s)
        return self.process.returncode

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


def launch(name: str, argv: list[str], data_dir: Path, log: Path, base_url: str, env: dict[str, str] | None = None) -> Server:
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as sink:
        process = subprocess.Popen(argv, stdout=sink, stderr=subprocess.STDOUT, env=env, stdin=subprocess.DEVNULL)
    return Server(name, process, log, data_dir, base_url)


def wait_until(ready: Callable[[], bool], server: Server, timeout_s: float = 90, poll_s: float = 0.2) -> None:
    """Poll `ready` until it holds; fail early if the server died."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"{server.name} exited with {server.process.returncode}:\n{server.log_tail()}")
        try:
            if ready():
                return
        except (httpx.HTTPError, OSError):
            pass  # not listening yet
        time.sleep(poll_s)
    raise RuntimeError(f"{server.name} was not ready after {timeout_s}s:\n{server.log_tail()}")


def _children_by_parent() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        # The command name may hold spaces and parentheses; fields resume after the last ')'.
        parent = int(stat[stat.rindex(")") + 2 :].split()[1])
        children.setdefault(parent, []).append(int(entry))
    return children


def vm_rss_bytes(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def process_tree(pid: int) -> list[int]:
    """The process and its live descendants."""
    children = _children_by_parent()
    tree, pending, seen = [], [pid], set()
    while pending:
        current = pending.pop()
        if current in seen:
            continue
        seen.add(current)
        tree.append(current)
        pending.extend(children.get(current, []))
    return tree


def rss_bytes(pid: int) -> int:
    """VmRSS of the process plus all its descendants."""
    return sum(vm_rss_bytes(member) for member in process_tree(pid))


def memory_split(pid: int) -> dict[str, float]:
    """One process's resident memory in MiB: all of it, what it allocated (anonymous), and the
    rest, mostly code mapped from files (chDB's library alone is some 200 MiB of it), which the
    kernel can drop and read again rather than swap."""
    fields: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        name, _, value = line.partition(":")
        fields[name] = int(value.split()[0]) * 1024
    rss, anonymous = fields["Rss"], fields["Anonymous"]
    return {
        "rss_mib": round(rss / 2**20, 1),
        "anonymous_mib": round(anonymous / 2**20, 1),
        "mapped_mib": round((rss - anonymous) / 2**20, 1),
    }


def storecast_memory(pid: int) -> dict[str, dict[str, float]]:
    """`serve all`'s resident memory: the services' process (the engine runs inside it) and its gateway workers."""
    workers = [memory_split(member) for member in process_tree(pid) if member != pid]
    return {
        "services": memory_split(pid),
        "gateway": {key: round(sum(worker[key] for worker in workers), 1) for key in ("rss_mib", "anonymous_mib", "mapped_mib")},
    }


def _cpu_ticks(pid: int) -> int:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0
    fields = stat[stat.rindex(")") + 2 :].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) the process and its live descendants have used so far."""
    return sum(_cpu_ticks(member) for member in process_tree(pid)) / os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class DiskUsage:
    allocated: int  # what `du` reports: blocks actually taken
    apparent: int  # sum of file sizes
    files: int


def disk_usage(path: Path) -> DiskUsage:
    """Usage of a directory tree, each inode counted once (snapshots hard-link parts)."""
    allocated = apparent = files = 0
    seen: set[tuple[int, int]] = set()
    for root, _dirs, names in os.walk(path, followlinks=False):
        for name in names:
            try:
                stat = os.lstat(os.path.join(root, name))
            except OSError:
                continue  # removed by a merge while we walked
            key = (stat.st_dev, stat.st_ino)
            if key in seen:
                continue
            seen.add(key)
            allocated += stat.st_blocks * 512
            apparent += stat.st_size
            files += 1
    return DiskUsage(allocated, apparent, files)


def wait_for_stable_disk(path: Path, *, quiet_s: float = 5, timeout_s: float = 120, tolerance: float = 0.005) -> DiskUsage:
    """Wait until the tree's size moves less than `tolerance` over `quiet_s` seconds.

    Background merges, snapshots and compactions rewrite data after the last
    write; sizing the directory mid-rewrite would count data twice.
    """
    deadline = time.monotonic() + timeout_s
    reference = disk_usage(path)
    stable_since = time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(1)
        current = disk_usage(path)
        if abs(current.allocated - reference.allocated) > tolerance * max(reference.allocated, 1):
            reference, stable_since = current, time.monotonic()
        elif time.monotonic() - stable_since >= quiet_s:
            return current
    return disk_usage(path)


def outdated_merge_tree_parts(store: Path) -> list[Path]:
    """Part directories already merged into a bigger part but not yet deleted.

    ClickHouse keeps a merged-away part for old_parts_lifetime (8 minutes by
    default) before deleting it; parts.py tells which parts another one covers.
    """
    return [table_dir / name for table_dir, names in table_part_dirs(store).items() for name in covered_part_names(names)]


def chdb_disk_usage(store: Path) -> dict[str, int]:
    """du of a chDB directory, and the same without parts that only await deletion."""
    whole = disk_usage(store)
    stale = [disk_usage(part) for part in outdated_merge_tree_parts(store)]
    stale_allocated, stale_apparent = sum(u.allocated for u in stale), sum(u.apparent for u in stale)
    return {
        "allocated": whole.allocated - stale_allocated,
        "apparent": whole.apparent - stale_apparent,
        "files": whole.files,
        "allocated_with_outdated_parts": whole.allocated,
        "outdated_parts": len(stale),
    }


@dataclass(frozen=True)
class CpuAccount:
    """Machine-wide busy CPU time against this process tree's own, to see who else used the cores."""

    machine_busy_s: float
    own_s: float
    wall_s: float

    @staticmethod
    def now() -> CpuAccount:
        fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
        idle = fields[3] + fields[4]  # idle + iowait
        busy = (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")
        times = os.times()
        # Children count once waited for: every server the bench started is waited for at its stop.
        own = times.user + times.system + times.children_user + times.children_system
        return CpuAccount(busy, own, time.monotonic())

    def since(self, start: CpuAccount) -> dict[str, float]:
        wall = self.wall_s - start.wall_s
        foreign = max(0.0, (self.machine_busy_s - start.machine_busy_s) - (self.own_s - start.own_s))
        cores = os.cpu_count() or 1
        return {
            "wall_s": round(wall, 1),
            "bench_cpu_s": round(self.own_s - start.own_s, 1),
            "other_processes_cpu_s": round(foreign, 1),
            "other_processes_share_of_machine": round(foreign / max(wall * cores, 1e-9), 3),
        }
