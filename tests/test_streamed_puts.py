"""Large, coded and chunked production PUTs go to the ingest service piece by piece (PutProductionStream).

An instance of its own, with a 16 MiB body limit, its metrics, and room for
the 100,000 records of a 6 MB body in one answer.
"""

from __future__ import annotations

import gzip
import socket
import time
from collections.abc import Iterator

import grpc
import pytest

from gateway.app import STREAMED_PUT_BYTES
from storecast.v1 import catalog_pb2, ingest_pb2, ingest_pb2_grpc
from tests.conftest import Pki, Storecast, assert_error, free_port, ok, start_storecast, stop_storecast
from tests.helpers import T0, rpc_failure
from tests.test_metrics import scrape, value

LIMIT = 16 * 1024 * 1024
STREAM = {"service": "storecast.v1.Ingest", "method": "PutProductionStream"}
HANDLED = "storecast_grpc_server_handled_total"


@pytest.fixture(scope="module")
def instance(tmp_path_factory: pytest.TempPathFactory, test_pki: Pki) -> Iterator[tuple[Storecast, int]]:
    metrics_port = free_port()
    env = {
        "STORECAST_MAX_BODY_BYTES": str(LIMIT),
        "STORECAST_MAX_RECORDS": "100000",
        "STORECAST_METRICS_PORT": str(metrics_port),
        "STORECAST_LOG": "0",
    }
    storecast = start_storecast(tmp_path_factory.mktemp("streamed-puts"), test_pki, env)
    yield storecast, metrics_port
    stop_storecast(storecast)
    assert storecast.process.returncode == 0, storecast.log.read_text()


def renewable_body(site_records: int, record_id: int = 1, last: bytes | None = None) -> bytes:
    records = [b'{"timestamp":%d,"id":%d,"p":%d.5,"q":-%d}' % (T0 + i * 1000, record_id, i, i % 97) for i in range(site_records)]
    if last is not None:
        records[-1] = last
    return b'{"values":[' + b",\n".join(records) + b"]}"


def calls(metrics_port: int, code: str, api_status: str) -> float:
    return value(scrape(metrics_port), HANDLED, **STREAM, code=code, api_status=api_status)


def stored(storecast: Storecast, site: int, record_id: int = 1) -> list[dict[str, object]]:
    with storecast.client("admin") as admin:
        response = admin.get(f"/v1/{site}/production/renewable/{record_id}")
    if response.status_code == 400:
        assert_error(response, 400, 1107)
        return []
    results: list[dict[str, object]] = ok(response)["results"]
    return results


@pytest.mark.parametrize(
    ("site", "how"),
    [(101, "content-length"), (102, "gzip"), (103, "chunked")],
)
def test_a_put_in_pieces_is_stored_whole(instance: tuple[Storecast, int], site: int, how: str) -> None:
    storecast, metrics_port = instance
    body = renewable_body(100_000)
    assert len(body) >= STREAMED_PUT_BYTES
    before = calls(metrics_port, "OK", "1000")
    headers = {"content-type": "application/json"}
    content: bytes | Iterator[bytes] = body
    if how == "gzip":
        content, headers["content-encoding"] = gzip.compress(body), "gzip"
    elif how == "chunked":
        content = (body[i : i + 100_003] for i in range(0, len(body), 100_003))  # httpx sends it chunked
    with storecast.client("admin") as admin:
        response = admin.put(f"/v1/{site}/production/renewable", content=content, headers=headers)
    assert ok(response, 201)["status_code"] == 1000
    assert calls(metrics_port, "OK", "1000") == before + 1
    records = stored(storecast, site)
    assert len(records) == 100_000
    assert records[0] == {"timestamp": T0, "id": 1, "p": 0.5, "q": -0.0}
    assert records[-1] == {"timestamp": T0 + 99_999_000, "id": 1, "p": 99_999.5, "q": -float(99_999 % 97)}


def test_a_smaller_put_goes_whole(instance: tuple[Storecast, int]) -> None:
    storecast, metrics_port = instance
    before = calls(metrics_port, "OK", "1000")
    with storecast.client("admin") as admin:
        ok(
            admin.put("/v1/104/production/renewable", content=renewable_body(10), headers={"content-type": "application/json"}),
            201,
        )
    assert calls(metrics_port, "OK", "1000") == before
    assert len(stored(storecast, 104)) == 10


def test_an_error_at_the_end_of_a_body_in_pieces_is_the_one_a_whole_body_gets(instance: tuple[Storecast, int]) -> None:
    storecast, _ = instance
    body = renewable_body(100_000, last=b'{"timestamp":1,"id":1,"p":"high"}')
    with storecast.client("admin") as admin:
        response = admin.put("/v1/105/production/renewable", content=body, headers={"content-type": "application/json"})
    with grpc.insecure_channel(storecast.grpc_target, options=[("grpc.max_send_message_length", -1)]) as channel:
        whole = ingest_pb2.PutProductionRequest(site_id=105, equipment_type=catalog_pb2.RENEWABLE, v1_json=body)
        _, failure = rpc_failure(lambda: ingest_pb2_grpc.IngestStub(channel).PutProduction(whole, timeout=60))
    assert failure.message == "payload content error: values[99999].p: expected a number or null, got a string"
    assert_error(response, 400, 1303, failure.message)
    assert stored(storecast, 105) == []


def test_a_chunked_body_over_the_limit_is_413_and_nothing_is_stored(instance: tuple[Storecast, int]) -> None:
    storecast, metrics_port = instance
    body = renewable_body(300_000)  # 18 MB
    assert len(body) > LIMIT
    before = calls(metrics_port, "CANCELLED", "none")
    with storecast.client("admin") as admin:
        response = admin.put(
            "/v1/106/production/renewable",
            content=(body[i : i + 65_536] for i in range(0, len(body), 65_536)),
            headers={"content-type": "application/json"},
        )
    assert_error(response, 413, 1303, f"larger than {LIMIT} bytes")
    wait_for(lambda: calls(metrics_port, "CANCELLED", "none") == before + 1)
    assert stored(storecast, 106) == []


def test_a_client_gone_mid_body_stores_nothing_and_the_rest_is_served(instance: tuple[Storecast, int]) -> None:
    storecast, metrics_port = instance
    body = renewable_body(100_000)
    before = calls(metrics_port, "CANCELLED", "none")
    host, port = "localhost", int(storecast.base_url.rsplit(":", 1)[1])
    with storecast.ssl_context("admin").wrap_socket(socket.create_connection((host, port)), server_hostname=host) as tls:
        head = (
            f"PUT /v1/107/production/renewable HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        )
        tls.sendall(head.encode() + body[: len(body) // 2])
        time.sleep(0.5)  # the first pieces are at the service
    wait_for(lambda: calls(metrics_port, "CANCELLED", "none") == before + 1)
    assert value(scrape(metrics_port), "storecast_grpc_server_requests_in_flight", service="storecast.v1.Ingest") == 0
    assert stored(storecast, 107) == []
    with storecast.client("admin") as admin:
        ok(admin.put("/v1/107/production/renewable", content=body, headers={"content-type": "application/json"}), 201)
    assert len(stored(storecast, 107)) == 100_000


def test_pieces_cut_anywhere_make_the_body_over_grpc(instance: tuple[Storecast, int]) -> None:
    storecast, _ = instance
    body = renewable_body(1_000)
    cuts = [0, 1, 17, 18, 19, 500, 501, len(body) - 1, len(body)]  # inside keys, numbers, the closing brackets
    pieces = [
        ingest_pb2.PutProductionPiece(site_id=108, equipment_type=catalog_pb2.RENEWABLE, v1_json=body[: cuts[1]]),
        *(ingest_pb2.PutProductionPiece(v1_json=body[lo:hi]) for lo, hi in zip(cuts[1:], cuts[2:])),
    ]
    with grpc.insecure_channel(storecast.grpc_target) as channel:
        reply = ingest_pb2_grpc.IngestStub(channel).PutProductionStream(iter(pieces), timeout=60)
    assert reply.stored == 1_000
    assert len(stored(storecast, 108)) == 1_000


@pytest.mark.parametrize(
    ("pieces", "code", "message"),
    [
        ([], 1302, "payload empty error: the body is empty"),
        ([b""], 1302, "payload empty error: the body is empty"),
        ([b"{", b'"values":[]', b"}"], 1302, None),
        ([b'{"values":[{"timestamp":1,"id":1}'], 1301, None),
        ([b"x" * (LIMIT // 2)] * 3, 1303, f"larger than {LIMIT} bytes"),
    ],
)
def test_a_refused_stream_over_grpc_gets_the_api_error(
    instance: tuple[Storecast, int], pieces: list[bytes], code: int, message: str | None
) -> None:
    storecast, _ = instance
    requests = [
        ingest_pb2.PutProductionPiece(site_id=109, equipment_type=catalog_pb2.RENEWABLE, v1_json=piece)
        if i == 0
        else ingest_pb2.PutProductionPiece(v1_json=piece)
        for i, piece in enumerate(pieces)
    ]
    with grpc.insecure_channel(storecast.grpc_target, options=[("grpc.max_send_message_length", -1)]) as channel:
        status, failure = rpc_failure(lambda: ingest_pb2_grpc.IngestStub(channel).PutProductionStream(iter(requests), timeout=60))
    assert status == grpc.StatusCode.INVALID_ARGUMENT and failure.code == code
    if message is not None:
        assert message in failure.message
    assert stored(storecast, 109) == []


def wait_for(condition: object, seconds: float = 20) -> None:
    assert callable(condition)
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)
