"""The request path's floor: storecast's parts with nothing to do.

A 1-record PUT through storecast crosses two Python processes: the gateway
(uvicorn on uvloop, our TLS-aware HTTP protocol, mutual TLS) and the services
(grpcio's asyncio server on a uvloop of its own thread), over a gRPC call on a Unix socket. This
server keeps exactly that and drops everything else: the gateway process is an
ASGI app that reads the body, makes one Ingest.PutProduction call, and answers
storecast's 201 envelope; the servicer answers at once, storing nothing. What
the fleet's generator measures against it is the most any request path built of
these parts can serve on this machine, and the gap to storecast is what our
own code costs (docs/benchmarks.md).

    .venv/bin/python tests/bench/stack_floor.py --port PORT --socket PATH

It serves until SIGTERM; its gateway is a child process that dies with it.
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import signal
import subprocess
import sys
import threading
from collections.abc import AsyncIterator
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
import msgspec
import uvicorn
import uvloop

from gateway.tls import GatewayHttpProtocol, server_ssl_options
from services.lib.rpc.server import Context
from storecast.catalog import EQUIPMENT_TYPES
from storecast.env import setting
from storecast.status import STATUS, ApiStatus
from storecast.v1 import catalog_pb2, ingest_pb2, ingest_pb2_grpc, records_pb2

REPO = Path(__file__).resolve().parents[2]
PKI_DIR = REPO / ".dev" / "pki"
# storecast's answer to an acknowledged PUT (gateway/responses.py), without its X-Request-Id.
CREATED = msgspec.json.encode({"status_code": ApiStatus.SUCCESS, "status_message": STATUS[ApiStatus.SUCCESS].message})
_PR_SET_PDEATHSIG = 1


class NothingToDo(ingest_pb2_grpc.IngestServicer):
    def ReadRecent(self, request: ingest_pb2.ReadRecentRequest, context: grpc.ServicerContext) -> ingest_pb2.ReadRecentReply:
        return ingest_pb2.ReadRecentReply(answered=False)

    async def PutProduction(self, request: ingest_pb2.PutProductionRequest, context: Context) -> records_pb2.PutReply:
        return records_pb2.PutReply(stored=1)

    async def PutProductionMany(
        self, request: ingest_pb2.PutProductionManyRequest, context: Context
    ) -> ingest_pb2.PutProductionManyReply:
        stored = ingest_pb2.PutOutcome(stored=records_pb2.PutReply(stored=1))
        return ingest_pb2.PutProductionManyReply(outcomes=[stored] * len(request.puts))

    async def PutProductionStream(
        self, pieces: AsyncIterator[ingest_pb2.PutProductionPiece], context: Context
    ) -> records_pb2.PutReply:
        return records_pb2.PutReply(stored=1)


async def serve_services(socket_path: Path, stopping: threading.Event) -> None:
    """As services/lib/rpc/server.py builds it, without its interceptors: grpcio's asyncio server
    on uvloop, a thread pool of STORECAST_GRPC_WORKERS beside it, a Unix socket."""
    workers = int(setting("STORECAST_GRPC_WORKERS"))
    server = grpc.aio.server(migration_thread_pool=futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="rpc"))
    ingest_pb2_grpc.add_IngestServicer_to_server(NothingToDo(), server)
    socket_path.unlink(missing_ok=True)
    if server.add_insecure_port(f"unix:{socket_path}") == 0:
        raise OSError(f"cannot listen on {socket_path}")
    await server.start()
    await asyncio.to_thread(stopping.wait)
    await server.stop(grace=5)


class FloorApp:
    """An ASGI app with one answer: the body read, one gRPC call, storecast's 201."""

    def __init__(self, socket_path: Path) -> None:
        self._socket_path = socket_path
        self._ingest: ingest_pb2_grpc.IngestAsyncStub | None = None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await receive()  # lifespan.startup
            self._ingest = ingest_pb2_grpc.IngestStub(grpc.aio.insecure_channel(f"unix:{self._socket_path}"))
            await send({"type": "lifespan.startup.complete"})
            await receive()  # lifespan.shutdown
            await send({"type": "lifespan.shutdown.complete"})
            return
        if scope["method"] == "GET":  # the bench's readiness probe
            await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"0")]})
            await send({"type": "http.response.body", "body": b""})
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        assert self._ingest is not None
        _, _, site_id, _, equipment = scope["path"].split("/")  # /v1/{site_id}/production/{type}
        request = ingest_pb2.PutProductionRequest(
            site_id=int(site_id),
            equipment_type=catalog_pb2.EquipmentType.ValueType(EQUIPMENT_TYPES[equipment].enum_value),
            v1_json=body,
        )
        await self._ingest.PutProduction(request, timeout=30)
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(CREATED)).encode())]
        await send({"type": "http.response.start", "status": 201, "headers": headers})
        await send({"type": "http.response.body", "body": CREATED})


def serve_gateway(port: int, socket_path: Path) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    config = uvicorn.Config(
        FloorApp(socket_path),
        host="127.0.0.1",
        port=port,
        http=GatewayHttpProtocol,
        loop="uvloop",
        lifespan="on",
        log_level="warning",
        log_config=None,
        access_log=False,
        **server_ssl_options(str(PKI_DIR / "server.cert.pem"), str(PKI_DIR / "server.key.pem"), str(PKI_DIR / "ca.cert.pem")),
    )
    uvicorn.Server(config).run()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--socket", type=Path, required=True)
    parser.add_argument("--gateway", action="store_true", help=argparse.SUPPRESS)  # the child process
    args = parser.parse_args()
    if args.gateway:
        serve_gateway(args.port, args.socket)
        return 0
    stopping = threading.Event()
    services = threading.Thread(target=uvloop.run, args=(serve_services(args.socket, stopping),), name="rpc-loop")
    services.start()
    gateway = subprocess.Popen([sys.executable, __file__, "--gateway", "--port", str(args.port), "--socket", str(args.socket)])
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    exited = False
    while not stopping.wait(0.5):
        if gateway.poll() is not None:
            exited = True
            stopping.set()
    gateway.terminate()
    gateway.wait(timeout=30)
    services.join()
    args.socket.unlink(missing_ok=True)
    return 1 if exited else 0


if __name__ == "__main__":
    sys.exit(main())
