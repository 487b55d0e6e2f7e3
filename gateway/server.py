"""Runs the gateway: uvicorn on uvloop with our TLS-aware HTTP protocol,
alone (`storecast serve gateway`) or as worker processes of `storecast serve all`."""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

import uvicorn

from gateway.app import create_app
from gateway.config import GatewaySettings
from gateway.tls import GatewayHttpProtocol, server_ssl_options
from storecast.memory import reuse_freed_blocks

# How `serve all` hands its listening socket and its pid to a worker process.
_LISTEN_FD = "STORECAST_GATEWAY_LISTEN_FD"
_PARENT_PID = "STORECAST_GATEWAY_PARENT_PID"
_PR_SET_PDEATHSIG = 1
# Long enough for uvicorn's graceful shutdown (30 s) to end first.
_WORKER_STOP_S = 40


class GatewayServer(uvicorn.Server):
    """uvicorn re-raises SIGTERM after its graceful shutdown, which would kill a
    worker with a signal status instead of the clean exit `serve all` waits for;
    this server only stops serving and returns."""

    @contextmanager
    def capture_signals(self) -> Iterator[None]:
        previous = {signum: signal.signal(signum, self.handle_exit) for signum in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)


def build_server(settings: GatewaySettings) -> uvicorn.Server:
    config = uvicorn.Config(
        create_app(settings),
        host=settings.http_host,
        port=settings.http_port,
        http=GatewayHttpProtocol,
        # uvloop's event loop and TLS cost about half of asyncio's per request.
        loop="uvloop",
        # Client addresses come from the socket; no proxy rewrites them.
        proxy_headers=False,
        lifespan="on",
        log_level="warning",
        # uvicorn's few lines go through the process's JSON logging (storecast/logs.py);
        # the access log is ours (gateway/metrics.py).
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=30,
        **server_ssl_options(str(settings.tls_cert), str(settings.tls_key), str(settings.tls_client_ca)),
    )
    return GatewayServer(config)


def serve_gateway(settings: GatewaySettings) -> None:
    """Serve until SIGTERM/SIGINT, after draining in-flight requests: on the
    socket `serve all` handed down, or on a socket of its own."""
    reuse_freed_blocks()  # a PUT's body, its message and its TLS records, from one request to the next
    sockets = None
    if _LISTEN_FD in os.environ:
        _die_with_parent(int(os.environ[_PARENT_PID]))
        sockets = [socket.socket(fileno=int(os.environ[_LISTEN_FD]))]
    build_server(settings).run(sockets=sockets)


def _die_with_parent(parent_pid: int) -> None:
    """A worker must not outlive `serve all`, even one killed with SIGKILL: it would
    keep accepting requests for services that are gone."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    if os.getppid() != parent_pid:  # the parent died before the call above
        raise SystemExit(1)


def spawn_workers(settings: GatewaySettings, extra_env: Mapping[str, str] | None = None) -> list[subprocess.Popen[bytes]]:
    """Bind the gateway's address here, so a taken port fails `serve all` at once,
    and start the worker processes serving it (`extra_env`: the metrics' multiprocess
    set-up, storecast/metrics.py)."""
    listener = socket.create_server((settings.http_host, settings.http_port), backlog=4096)
    listener.set_inheritable(True)
    env = {**os.environ, **(extra_env or {}), _LISTEN_FD: str(listener.fileno()), _PARENT_PID: str(os.getpid())}
    argv = [sys.executable, "-m", "storecast", "serve", "gateway"]
    workers = [subprocess.Popen(argv, env=env, pass_fds=(listener.fileno(),)) for _ in range(settings.http_workers)]
    listener.close()  # the workers hold it now
    return workers


def stop_workers(workers: list[subprocess.Popen[bytes]]) -> bool:
    """SIGTERM each worker and wait for its graceful shutdown; whether any failed."""
    for worker in workers:
        if worker.poll() is None:
            worker.terminate()
    failed = False
    for worker in workers:
        try:
            failed |= worker.wait(timeout=_WORKER_STOP_S) != 0
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()
            failed = True
    return failed
