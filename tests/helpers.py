"""Constants and plain helpers the test modules share. Fixtures, and the helpers that
start a storecast or check its answers (put, ok, assert_error, read_all), are in conftest."""

from __future__ import annotations

import json
import os
import socket
import ssl
import subprocess
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc
import httpx
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_status import rpc_status

from storecast.catalog import Attribute, Kind, RecordType
from storecast.status import ApiFailure, from_rpc_status
from storecast.v1 import records_pb2

if TYPE_CHECKING:  # conftest imports this module
    from tests.conftest import Pki, Storecast

# The timestamp tests write at (2018-08-24 10:00 UTC). A module with an epoch of its own names it apart.
T0 = 1_535_104_800_000
MINUTE = 60_000
HOUR = 60 * MINUTE
JSON_HEADERS = {"content-type": "application/json"}

# A JSON object as parsed (response.json(), json.loads): its values are whatever the document held.
JsonObject = dict[str, Any]
# Query parameters as httpx takes them: by name, or as (name, value) pairs, where a name may repeat.
QueryValue = str | int | float | bool | None
Query = Mapping[str, QueryValue] | list[tuple[str, QueryValue]]


# --- requests ------------------------------------------------------------------


def raw_put(
    client: httpx.Client, path: str, body: bytes | Iterable[bytes], content_type: str | None = "application/json"
) -> httpx.Response:
    """A PUT of a body sent as it is (chunks: with no Content-Length), with this Content-Type (None: none)."""
    headers = {"content-type": content_type} if content_type else {}
    return client.put(path, content=body, headers=headers)


def raw_exchange(storecast: Storecast, payload: bytes) -> tuple[int, bytes]:
    """Bytes sent as they are over a TLS connection presenting the admin certificate: the status and body answered."""
    host, port = storecast.base_url.removeprefix("https://").split(":")
    with (
        socket.create_connection((host, int(port)), timeout=30) as raw,
        storecast.ssl_context("admin").wrap_socket(raw, server_hostname=host) as tls,
    ):
        tls.sendall(payload)
        response = b""
        while chunk := tls.recv(65536):
            response += chunk
    head, _, body = response.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


def rpc_failure(call: Callable[[], object]) -> tuple[grpc.StatusCode, ApiFailure]:
    """The gRPC status code and the ApiFailure a direct gRPC call was refused with."""
    with pytest.raises(grpc.RpcError) as raised:
        call()
    failure = from_rpc_status(rpc_status.from_call(raised.value))
    assert failure is not None, raised.value
    return raised.value.code(), failure


# --- components started one by one ---------------------------------------------


def gateway_tls_env(pki: Pki) -> dict[str, str]:
    """The gateway's server certificate, client CA and permissions, from the test PKI."""
    return {
        "STORECAST_TLS_CERT": str(pki.directory / "server.cert.pem"),
        "STORECAST_TLS_KEY": str(pki.directory / "server.key.pem"),
        "STORECAST_TLS_CLIENT_CA": str(pki.ca),
        "STORECAST_PERMISSIONS": str(pki.directory / "permissions.yaml"),
    }


def gateway_env(test_pki: Pki, http_port: int, **targets: str) -> dict[str, str]:
    """The environment of a gateway alone, calling the services at `targets` (ingest=..., query=..., vector=...)."""
    return {
        "STORECAST_HTTP_PORT": str(http_port),
        **gateway_tls_env(test_pki),
        "STORECAST_GRPC_TIMEOUT_S": "5",
        **{f"STORECAST_{name.upper()}_TARGET": value for name, value in targets.items()},
    }


def spawn(target: str, directory: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    """`storecast serve <target>`, logging to <directory>/<target>.log, an ingest's write-ahead log in <directory>/wal."""
    log = (directory / f"{target}.log").open("wb")
    env = {"STORECAST_LOG_DIR": str(directory / "wal"), **env}
    return subprocess.Popen(
        [sys.executable, "-m", "storecast", "serve", target], env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT
    )


def wait_for_health(target: str, process: subprocess.Popen[bytes], service: str) -> None:
    with grpc.insecure_channel(target) as channel:
        grpc.channel_ready_future(channel).result(timeout=60)
        reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=service), timeout=10)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
    assert process.poll() is None


def admin_client(test_pki: Pki, http_port: int) -> httpx.Client:
    """An HTTPS client of a gateway started alone on `http_port`, presenting the admin certificate."""
    context = ssl.create_default_context(cafile=str(test_pki.ca))
    context.load_cert_chain(*test_pki.cert("admin"))
    return httpx.Client(base_url=f"https://localhost:{http_port}", verify=context, timeout=30)


# --- typed records ---------------------------------------------------------------


def column(attribute: Attribute, values: Sequence[Any]) -> records_pb2.Column:
    """A typed Column of the attribute's kind: None is null."""
    nulls = [value is None for value in values]
    result = records_pb2.Column(name=attribute.name, null_map=bytes(nulls) if any(nulls) else b"")
    if attribute.kind is Kind.FLOAT:
        result.doubles.extend(0.0 if value is None else value for value in values)
    elif attribute.kind is Kind.UNSIGNED_INT:
        result.uints.extend(0 if value is None else value for value in values)
    else:
        result.strings.extend("" if value is None else value for value in values)
    return result


def production_batch(record_type: RecordType, records: Sequence[JsonObject]) -> records_pb2.RecordBatch:
    """The production records of a v1 body as a RecordBatch; an attribute absent is null."""
    batch = records_pb2.RecordBatch(timestamps=[r["timestamp"] for r in records], ids=[r["id"] for r in records])
    batch.columns.extend(column(a, [r.get(a.name) for r in records]) for a in record_type.attributes)
    return batch


def vector_batch(record_type: RecordType, vectors: Sequence[JsonObject], with_creation: bool = True) -> records_pb2.RecordBatch:
    """The vectors (tariff entries: without creation) of a v1 body as a RecordBatch."""
    periods = [p for v in vectors for p in v["values"]]
    ends, total = [], 0
    for vector in vectors:
        total += len(vector["values"])
        ends.append(total)
    batch = records_pb2.RecordBatch(timestamps=[p["timestamp"] for p in periods], ids=[v["id"] for v in vectors])
    batch.period_ends.extend(ends)
    if with_creation:
        batch.creation_timestamps.extend(v["creation_timestamp"] for v in vectors)
    batch.columns.extend(column(a, [p.get(a.name) for p in periods]) for a in record_type.attributes)
    batch.entry_columns.extend(column(a, [v.get(a.name) for v in vectors]) for a in record_type.vector_attributes)
    return batch


def body(values: Sequence[JsonObject]) -> bytes:
    """The v1 JSON body; JSON has no infinity, so an infinite float is the literal that overflows a double."""
    return json.dumps({"values": list(values)}).replace("Infinity", "1e309").encode()
