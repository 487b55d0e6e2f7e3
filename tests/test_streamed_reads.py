"""Long production reads streamed from the store as it renders them (StreamProductionJson).

An instance with the default response cap (100,000 records) and 110,000 meter-3p
records of one id: an unbounded read is a 206 of 100,000 records, about 21 MB.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from backports import zstd

from gateway.reads import STREAMED_SPAN_MS
from storecast.catalog import EQUIPMENT_TYPES
from storecast.v1 import catalog_pb2, query_pb2, query_pb2_grpc
from tests.conftest import Pki, Storecast, assert_error, free_port, ok, start_storecast, stop_storecast
from tests.helpers import T0
from tests.test_memory import process_tree
from tests.test_metrics import scrape, value

SITE = 41
METER_3P = EQUIPMENT_TYPES["meter-3p"]
CAP = 100_000
RECORDS = 110_000
PATH = f"/v1/{SITE}/production/meter-3p/1"
PER_PUT = 5_000


@pytest.fixture(scope="module")
def instance(tmp_path_factory: pytest.TempPathFactory, test_pki: Pki) -> Iterator[tuple[Storecast, int]]:
    metrics_port = free_port()
    env = {"STORECAST_MAX_RECORDS": str(CAP), "STORECAST_METRICS_PORT": str(metrics_port), "STORECAST_LOG": "0"}
    storecast = start_storecast(tmp_path_factory.mktemp("streamed"), test_pki, env)
    with storecast.client("admin") as admin:
        for first in range(0, RECORDS, PER_PUT):
            values = [
                {"timestamp": T0 + i * 1000, "id": 1, **{a.name: i % 977 * 0.25 + k for k, a in enumerate(METER_3P.attributes)}}
                for i in range(first, first + PER_PUT)
            ]
            ok(admin.put(f"/v1/{SITE}/production/meter-3p", json={"values": values}), 201)
    yield storecast, metrics_port
    stop_storecast(storecast)


@pytest.fixture(scope="module")
def query(instance: tuple[Storecast, int]) -> Iterator[query_pb2_grpc.QueryStub]:
    with grpc.insecure_channel(instance[0].grpc_target, options=[("grpc.max_receive_message_length", -1)]) as channel:
        yield query_pb2_grpc.QueryStub(channel)


def whole_answer(query: query_pb2_grpc.QueryStub, start: int | None, end: int | None) -> bytes:
    """The v1 body of GetProduction's answer, which comes whole in one message."""
    request = query_pb2.GetProductionRequest(site_id=SITE, equipment_type=catalog_pb2.METER_3P, id=1)
    if start is not None and end is not None:
        request.range.start_ms, request.range.end_ms = start, end
    records = query.GetProduction(request, timeout=60)
    if records.HasField("next_from"):
        head = b'{"status_code":1001,"status_message":"partial response","next_from":%d,"results":' % records.next_from
    else:
        head = b'{"status_code":1000,"status_message":"success","results":'
    return head + records.results_json + b"}"


def gateway_pids(storecast: Storecast) -> list[int]:
    """`serve all`'s gateway processes: every process under it but itself, which runs the services."""
    return [pid for pid in process_tree(storecast.process.pid) if pid != storecast.process.pid]


def rss(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{key}:"):
            return int(line.split()[1]) * 1024
    raise KeyError(key)


@pytest.mark.parametrize(
    ("start", "end", "status", "streamed"),
    [
        (None, None, 206, True),  # the cap's 100,000 records of 110,000
        (T0, T0 + 90_000_000, 200, True),  # 90,000 records over 25 h
        (T0 + 100_000_000, T0 + 200_000_000, 200, True),  # the last 10,000, after a 206's next_from
        (T0 + 109_500_000, T0 + 109_500_000 + STREAMED_SPAN_MS, 200, True),  # a day's last 500: in one piece
        (T0 - STREAMED_SPAN_MS, T0, 200, True),  # a day with none
        (T0, T0 + STREAMED_SPAN_MS - 1, 200, False),  # 86,400 records, but less than a day: answered whole
    ],
)
def test_a_long_read_streams_the_bytes_of_the_whole_answer(
    instance: tuple[Storecast, int],
    query: query_pb2_grpc.QueryStub,
    start: int | None,
    end: int | None,
    status: int,
    streamed: bool,
) -> None:
    storecast, metrics_port = instance
    stream_calls = {"service": "storecast.v1.Query", "method": "StreamProductionJson"}
    before = value(scrape(metrics_port), "storecast_grpc_server_handling_seconds_count", **stream_calls)
    params = {} if start is None else {"from": start, "to": end}
    with (
        storecast.client("admin") as admin,
        admin.stream("GET", PATH, params=params, headers={"accept-encoding": "identity"}) as response,
    ):
        received = response.read()
    assert response.status_code == status
    assert received == whole_answer(query, start, end)
    after = value(scrape(metrics_port), "storecast_grpc_server_handling_seconds_count", **stream_calls)
    assert after == before + streamed
    # More than one piece goes in chunks; an answer of one piece is sent whole, with its length.
    chunked = streamed and len(received) > 256 * 1024
    assert ("content-length" not in response.headers) is chunked
    assert (response.headers.get("transfer-encoding") == "chunked") is chunked


def test_following_next_from_reads_every_record_once(instance: tuple[Storecast, int]) -> None:
    storecast, _ = instance
    timestamps: list[int] = []
    with storecast.client("admin") as admin:
        body = ok(admin.get(PATH), 206)
        timestamps += [r["timestamp"] for r in body["results"]]
        rest = ok(admin.get(PATH, params={"from": body["next_from"], "to": T0 + RECORDS * 1000}))
        timestamps += [r["timestamp"] for r in rest["results"]]
    assert body["next_from"] == T0 + CAP * 1000
    assert timestamps == [T0 + i * 1000 for i in range(RECORDS)]


def test_a_streamed_answer_comes_encoded_as_asked(instance: tuple[Storecast, int]) -> None:
    storecast, _ = instance
    params = {"from": T0, "to": T0 + 90_000_000}
    with storecast.client("admin") as admin:
        plain = admin.get(PATH, params=params, headers={"accept-encoding": "identity"})
        by_httpx = admin.get(PATH, params=params)  # asks for gzip and decodes it
        with admin.stream("GET", PATH, params=params, headers={"accept-encoding": "zstd"}) as response:
            zstd_headers, zstd_bytes = response.headers, b"".join(response.iter_raw())
    assert by_httpx.headers["content-encoding"] == "gzip" and by_httpx.content == plain.content
    assert "content-length" not in by_httpx.headers and by_httpx.headers["vary"] == "Accept-Encoding"
    assert zstd_headers["content-encoding"] == "zstd" and "content-length" not in zstd_headers
    assert len(zstd_bytes) < len(plain.content) / 5 and zstd.decompress(zstd_bytes) == plain.content


def test_the_gateway_holds_a_piece_of_a_streamed_answer_not_the_answer(instance: tuple[Storecast, int]) -> None:
    """The whole answer would be a 21 MB gRPC message, and a copy of it as the HTTP body."""
    storecast, _ = instance
    gateways = gateway_pids(storecast)
    with storecast.client("admin") as admin:
        admin.get(PATH, params={"from": T0, "to": T0 + 3_000_000})  # every worker warm enough to serve
        before = {pid: rss(pid, "VmRSS") for pid in gateways}
        for pid in gateways:
            Path(f"/proc/{pid}/clear_refs").write_text("5")  # VmHWM := VmRSS
        with admin.stream("GET", PATH, headers={"accept-encoding": "identity"}) as response:
            size = sum(len(chunk) for chunk in response.iter_raw())
    growth = max(rss(pid, "VmHWM") - before[pid] for pid in gateways)
    assert size > 20_000_000
    assert growth < size / 4, f"a gateway grew by {growth} bytes for a {size}-byte answer"


def test_a_client_gone_mid_stream_stops_the_query_and_the_rest_is_served(instance: tuple[Storecast, int]) -> None:
    storecast, metrics_port = instance
    cancelled = {"service": "storecast.v1.Query", "method": "StreamProductionJson", "code": "CANCELLED", "api_status": "none"}
    before = value(scrape(metrics_port), "storecast_grpc_server_handled_total", **cancelled)
    host, port = "localhost", int(storecast.base_url.rsplit(":", 1)[1])
    raw = socket.socket()
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # a slow reader: the answer backs up to the service
    raw.connect((host, port))
    with storecast.ssl_context("admin").wrap_socket(raw, server_hostname=host) as tls:
        tls.sendall(f"GET {PATH} HTTP/1.1\r\nHost: {host}\r\nAccept-Encoding: identity\r\n\r\n".encode())
        head = tls.recv(4096)
        assert head.startswith(b"HTTP/1.1 206 ")
        time.sleep(0.5)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        samples = scrape(metrics_port)
        if value(samples, "storecast_grpc_server_handled_total", **cancelled) == before + 1:
            break
        time.sleep(0.1)
    assert value(samples, "storecast_grpc_server_handled_total", **cancelled) == before + 1
    assert value(samples, "storecast_grpc_server_requests_in_flight", service="storecast.v1.Query") == 0
    # The engine's connection the query held is free again: reads and writes go on.
    with storecast.client("admin") as admin:
        assert len(ok(admin.get(PATH, params={"from": T0, "to": T0 + 5_000}))["results"]) == 5
        ok(admin.put(f"/v1/{SITE}/production/meter-3p", json={"values": [{"timestamp": T0, "id": 2}]}), 201)
        [stored] = ok(admin.get(f"/v1/{SITE}/production/meter-3p/2"))["results"]
        assert stored["timestamp"] == T0 and stored["id"] == 2


def test_a_refused_long_read_gets_the_error_a_whole_one_gets(
    instance: tuple[Storecast, int], query: query_pb2_grpc.QueryStub
) -> None:
    """The refusal comes before the first piece: over HTTP the usual error, over gRPC the ApiError."""
    storecast, _ = instance
    with storecast.client("admin") as admin:
        assert_error(admin.get(f"/v1/{SITE}/production/meter-3p/404"), 400, 1107)
        assert_error(admin.get(f"/v1/{SITE + 1}/production/meter-3p/1", params={"from": 0, "to": T0}), 400, 1107)
    request = query_pb2.GetProductionRequest(site_id=SITE, equipment_type=catalog_pb2.METER_3P, id=404)
    with pytest.raises(grpc.RpcError) as streamed:
        list(query.StreamProductionJson(request, timeout=60))
    with pytest.raises(grpc.RpcError) as whole:
        query.GetProduction(request, timeout=60)
    assert streamed.value.code() == whole.value.code() == grpc.StatusCode.NOT_FOUND
    assert streamed.value.trailing_metadata() == whole.value.trailing_metadata()
