"""Prometheus metrics and the JSON access log, against a server of their own so that counts are exact:
`serve all` with two gateway workers, whose metrics the services' process serves summed
(prometheus-client's multiprocess mode), on a plain-HTTP metrics port."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Message, Scope

from gateway import routing
from gateway.metrics import OTHER
from gateway.responses import created_response, error_response
from services.lib.store.schema import FORECAST_TABLES, PRODUCTION_TABLES
from storecast.logs import JsonFormatter, log_level
from storecast.status import STATUS, ApiFailure, ApiStatus
from storecast.v1 import catalog_pb2, ingest_pb2, ingest_pb2_grpc, records_pb2
from tests.conftest import Pki, Storecast, assert_error, free_port, ok, put, start_storecast, stop_storecast
from tests.helpers import T0, JsonObject, spawn, wait_for_health

# --- route templates: the label values are a fixed list whatever the path --------------------


def v1_route(path: str) -> str:
    """The route label of a path of the /v1 tree: the template routing names, or OTHER."""
    try:
        return routing.shape(path.encode()).route or OTHER
    except ApiFailure:
        return OTHER


@pytest.mark.parametrize(
    ("path", "template"),
    [
        ("/v1/100/production/renewable", "/v1/{site_id}/production/{type}"),
        ("/v1/100/production/renewable/1", "/v1/{site_id}/production/{type}/{id}"),
        # The shape counts, not whether the site, type or id are valid (those are the status).
        ("/v1/x/production/toaster/y", "/v1/{site_id}/production/{type}/{id}"),
        ("/v1/7/forecast/solar", "/v1/{site_id}/forecast/{type}"),
        ("/v1/7/forecast/solar/3", "/v1/{site_id}/forecast/{type}/{id}"),
        ("/v1/7/commitment", "/v1/{site_id}/commitment"),
        ("/v1/7/commitment/3", "/v1/{site_id}/commitment/{id}"),
        ("/v1/7/tariff", "/v1/{site_id}/tariff"),
        ("/v1/7/tariff/3", "/v1/{site_id}/tariff/{id}"),
        ("/v1/7/%74ariff/3", "/v1/{site_id}/tariff/{id}"),  # percent-decoded, as routing reads it
        ("/", OTHER),
        ("/metrics", OTHER),
        ("/v1/7/production", OTHER),
        ("/v1/7/production/meter/1/2", OTHER),
        ("/v1/7/tariff/3/4", OTHER),
        ("/v1/7/toaster/3", OTHER),
        ("/v1//production/meter", OTHER),
        ("/v2/7/production/meter", OTHER),
        ("/v1/7/production/meter%0A/1", "/v1/{site_id}/production/{type}/{id}"),
    ],
)
def test_route_templates(path: str, template: str) -> None:
    assert v1_route(path) == template


def _sent(response: Response, scope: Scope) -> Scope:
    """The request state once the response is sent."""

    async def receive() -> Message:
        return {"type": "http.request"}

    async def send(message: Message) -> None:
        pass

    asyncio.run(response(scope, receive, send))
    state: Scope = scope["state"]
    return state


def test_api_responses_note_their_status_as_they_are_sent() -> None:
    refused = _sent(error_response(ApiFailure(ApiStatus.INVALID_ID)), {"type": "http", "state": {}})
    assert refused["api_status"] == ApiStatus.INVALID_ID
    scope: Scope = {"type": "http", "state": {}}
    stored = _sent(created_response(Request(scope), records_pb2.PutReply(stored=3)), scope)
    assert (stored["api_status"], stored["records"]) == (ApiStatus.SUCCESS, 3)
    assert "api_status" not in _sent(Response(b'{"openapi":"3.1.0"}'), {"type": "http", "state": {}})


def test_log_lines_are_json_with_the_record_fields() -> None:
    record = logging.LogRecord("storecast.access", logging.INFO, __file__, 1, "request", None, None)
    record.fields = {"request_id": "abc", "cn": "admin", "status": 201, "records": 3}
    line = json.loads(JsonFormatter().format(record))
    assert line["level"] == "INFO" and line["logger"] == "storecast.access" and line["message"] == "request"
    assert line["request_id"] == "abc" and line["cn"] == "admin" and line["status"] == 201 and line["records"] == 3
    assert line["time"].endswith("+00:00")
    try:
        raise ValueError("boom")
    except ValueError:
        failed = logging.LogRecord("storecast.rpc", logging.ERROR, __file__, 1, "failed %s", ("x",), sys.exc_info())
    line = json.loads(JsonFormatter().format(failed))
    assert line["message"] == "failed x" and "ValueError: boom" in line["exception"]


def test_the_log_level_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STORECAST_LOG_LEVEL", raising=False)
    assert log_level() == "INFO"
    monkeypatch.setenv("STORECAST_LOG_LEVEL", "warning")
    assert log_level() == "WARNING"
    monkeypatch.setenv("STORECAST_LOG_LEVEL", "loud")
    with pytest.raises(SystemExit, match="STORECAST_LOG_LEVEL"):
        log_level()


# --- a server of its own ---------------------------------------------------------------------

SITE = 100
PRODUCTION = f"/v1/{SITE}/production/renewable"
PUTS = 3
RECORDS_PER_PUT = 3


def multiprocess_directories(storecast: Storecast) -> list[Path]:
    """The directories `serve all` makes for its workers' metrics, in the TMPDIR start_storecast gives it."""
    return list((storecast.log.parent / "tmp").glob("storecast-metrics-*"))


@pytest.fixture(scope="module")
def observed(tmp_path_factory: pytest.TempPathFactory, test_pki: Pki) -> Iterator[tuple[Storecast, int]]:
    metrics_port = free_port()
    # The log off: each PUT is its own insert, so the group commit's and the store's counts are exact
    # (the write-ahead log's own figures: tests/test_recent.py).
    env = {"STORECAST_METRICS_PORT": str(metrics_port), "STORECAST_HTTP_WORKERS": "2", "STORECAST_LOG": "0"}
    instance = start_storecast(tmp_path_factory.mktemp("metrics"), test_pki, env)
    yield instance, metrics_port
    stop_storecast(instance)
    assert instance.process.returncode == 0, instance.log.read_text()
    # Stopped, `serve all` has cleaned its multiprocess directory up.
    assert multiprocess_directories(instance) == []


Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(port: int) -> Samples:
    response = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def http_requests(samples: Samples, route: str) -> float:
    return sum(
        v for (name, labels), v in samples.items() if name == "storecast_http_requests_total" and ("route", route) in labels
    )


def test_a_known_mix_of_requests_gives_exact_counts(observed: tuple[Storecast, int]) -> None:
    storecast, metrics_port = observed
    # Each request on a connection of its own, so both workers are likely to serve some.
    request_ids: dict[str, tuple[int, int, int | None]] = {}
    for number in range(PUTS):
        start = T0 + number * RECORDS_PER_PUT * 1000
        records = [{"timestamp": start + i * 1000, "id": 1, "p": 1.0, "q": 2.0} for i in range(RECORDS_PER_PUT)]
        with storecast.client("admin") as admin:
            response = put(admin, PRODUCTION, records)
            ok(response, 201)
            request_ids[response.headers["x-request-id"]] = (201, 1000, RECORDS_PER_PUT)
    everything = PUTS * RECORDS_PER_PUT
    with storecast.client("reader") as reader:
        response = reader.get(f"{PRODUCTION}/1", params={"from": T0, "to": T0 + 3_600_000})
        assert len(ok(response)["results"]) == everything
        request_ids[response.headers["x-request-id"]] = (200, 1000, everything)
        assert len(ok(reader.get(f"{PRODUCTION}/1", params={"from": T0, "to": T0 + 3000}))["results"]) == 3
        unknown = reader.get(f"{PRODUCTION}/2", params={"from": T0, "to": T0 + 3000})
        assert_error(unknown, 400, 1107)
        request_ids[unknown.headers["x-request-id"]] = (400, 1107, None)  # a refused request has no records
    with storecast.client("admin") as admin:
        periods = [{"timestamp": T0 + i * 900_000, "p": float(i)} for i in range(4)]
        ok(put(admin, f"/v1/{SITE}/forecast/solar", [{"creation_timestamp": T0, "id": 1, "values": periods}]), 201)
        assert_error(admin.get(f"/v1/{SITE}/production/toaster/1"), 400, 1106)
        assert admin.get("/openapi.json").status_code == 200

    # A worker counts a request once it has answered it: the scrape may come first by a hair.
    deadline = time.monotonic() + 10
    while True:
        samples = scrape(metrics_port)
        if http_requests(samples, "/v1/{site_id}/production/{type}/{id}") >= 4 or time.monotonic() > deadline:
            break
        time.sleep(0.1)

    requests = "storecast_http_requests_total"
    put_route, get_route = "/v1/{site_id}/production/{type}", "/v1/{site_id}/production/{type}/{id}"
    assert value(samples, requests, route=put_route, method="PUT", status="201", api_status="1000") == PUTS
    assert value(samples, requests, route=get_route, method="GET", status="200", api_status="1000") == 2
    assert value(samples, requests, route=get_route, method="GET", status="400", api_status="1107") == 1
    assert value(samples, requests, route=get_route, method="GET", status="400", api_status="1106") == 1
    assert http_requests(samples, put_route) == PUTS and http_requests(samples, get_route) == 4
    assert value(samples, requests, route="/v1/{site_id}/forecast/{type}", method="PUT", status="201", api_status="1000") == 1
    assert value(samples, requests, route="/openapi.json", method="GET", status="200", api_status="none") == 1
    # No raw path is ever a label.
    assert not any(str(SITE) in v for (name, labels), _ in samples.items() if name == requests for k, v in labels if k == "route")

    duration = "storecast_http_request_duration_seconds_count"
    assert value(samples, duration, route=put_route, method="PUT") == PUTS
    assert value(samples, duration, route=get_route, method="GET") == 4
    assert value(samples, "storecast_http_requests_in_flight") == 0
    assert value(samples, "storecast_http_request_body_bytes_in_flight") == 0

    # The services, behind: the 1106 never left the gateway.
    ingest, query = {"service": "storecast.v1.Ingest"}, {"service": "storecast.v1.Query"}
    handled = "storecast_grpc_server_handled_total"
    # The gateway sends small PUTs, and first small reads, by the shared methods (gateway/shared_calls.py):
    # with the log off memory answers no read, and each went on to a GetProduction of its own.
    assert value(samples, handled, **ingest, method="PutProductionMany", code="OK", api_status="1000") == PUTS
    assert value(samples, handled, **query, method="GetProductionAtOnce", code="OK", api_status="1000") == 3
    assert value(samples, handled, **query, method="GetProduction", code="OK", api_status="1000") == 2
    not_found = STATUS[ApiStatus.INVALID_ID].grpc_code.name
    assert value(samples, handled, **query, method="GetProduction", code=not_found, api_status="1107") == 1
    handling = "storecast_grpc_server_handling_seconds_count"
    assert value(samples, handling, **ingest, method="PutProductionMany") == PUTS
    assert value(samples, handling, **query, method="GetProduction") == 3
    assert value(samples, handling, service="storecast.v1.Vector", method="PutForecast") == 1

    assert value(samples, "storecast_records_written_total", category="production", type="renewable") == everything
    assert value(samples, "storecast_records_read_total", category="production", type="renewable") == everything + 3
    assert value(samples, "storecast_records_written_total", category="forecast", type="solar") == 4
    assert value(samples, "storecast_vectors_written_total", category="forecast", type="solar") == 1

    # Sequential PUTs: each insert holds one request.
    table = PRODUCTION_TABLES["renewable"].name
    assert value(samples, "storecast_insert_batch_requests_count", table=table) == PUTS
    assert value(samples, "storecast_insert_batch_requests_sum", table=table) == PUTS
    assert value(samples, "storecast_insert_batch_rows_sum", table=table) == everything
    assert value(samples, "storecast_insert_batch_rows_count", table=FORECAST_TABLES["solar"].name) == 1
    assert value(samples, "storecast_store_query_duration_seconds_count", kind="insert") == PUTS + 1
    # Two reads, and the 1107's read plus its "was this id ever stored" question.
    assert value(samples, "storecast_store_query_duration_seconds_count", kind="query") == 4
    assert value(samples, "storecast_store_errors_total", kind="insert") == 0
    assert value(samples, "storecast_store_errors_total", kind="query") == 0
    assert value(samples, "process_cpu_seconds_total") > 0

    # One JSON line per request, with who, what and how it ended.
    lines = [json.loads(line) for line in storecast.log.read_text().splitlines() if line.startswith("{")]
    access: dict[str, JsonObject] = {line["request_id"]: line for line in lines if line["logger"] == "storecast.access"}
    for request_id, (status, api_status, counted) in request_ids.items():
        line = access[request_id]
        assert (line["status"], line["api_status"], line["records"]) == (status, api_status, counted), line
        assert line["route"] in (put_route, get_route) and line["duration_ms"] > 0
        assert line["cn"] == ("admin" if status == 201 else "reader")
    assert len([line for line in access.values() if line["route"] in (put_route, get_route)]) == PUTS + 4


def test_concurrent_small_puts_share_calls_and_are_each_answered_as_alone(observed: tuple[Storecast, int]) -> None:
    """Each PUT here waits for an insert of its own (the log is off), so those that arrive
    meanwhile queue in their worker and go to the ingest service together (gateway/shared_calls.py)."""
    storecast, metrics_port = observed
    before = scrape(metrics_port)
    clients = 24
    started = threading.Barrier(clients)
    statuses: dict[int, tuple[int, int]] = {}

    def client(number: int) -> None:
        # Every third PUT is refused (a string where a number goes), and only it.
        value: object = "hot" if number % 3 == 0 else float(number)
        with storecast.client("admin") as admin:
            started.wait(timeout=60)
            response = put(admin, f"/v1/{SITE}/production/renewable", [{"timestamp": T0 + number, "id": 3, "p": value}])
            statuses[number] = (response.status_code, response.json()["status_code"])

    threads = [threading.Thread(target=client, args=(number,)) for number in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert statuses == {n: (400, 1303) if n % 3 == 0 else (201, 1000) for n in range(clients)}
    with storecast.client("reader") as reader:
        stored = ok(reader.get(f"/v1/{SITE}/production/renewable/3", params={"from": T0, "to": T0 + clients}))["results"]
    assert [(r["timestamp"], r["p"]) for r in stored] == [(T0 + n, float(n)) for n in range(clients) if n % 3]
    after = scrape(metrics_port)
    family = "storecast_http_requests_per_backend_call"
    puts = value(after, f"{family}_sum", method="PutProduction") - value(before, f"{family}_sum", method="PutProduction")
    calls = value(after, f"{family}_count", method="PutProduction") - value(before, f"{family}_count", method="PutProduction")
    assert puts == clients and calls < clients


def test_the_metrics_port_is_plain_http_and_the_api_port_still_wants_tls(observed: tuple[Storecast, int]) -> None:
    storecast, metrics_port = observed
    assert "storecast_http_requests" in httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10).text
    # The endpoint's name[] filter reaches the workers' families too.
    only = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", params={"name[]": "storecast_http_requests_total"}, timeout=10)
    names = {sample.name for family in text_string_to_metric_families(only.text) for sample in family.samples}
    assert names == {"storecast_http_requests_total"}
    with pytest.raises(httpx.TransportError):
        httpx.get(storecast.base_url.replace("https://", "http://") + "/metrics", timeout=10)


def test_serve_all_keeps_its_workers_metrics_in_one_directory(observed: tuple[Storecast, int]) -> None:
    """Running, one directory holds the workers' files; the `observed` fixture checks it is gone once stopped."""
    storecast, _ = observed
    [directory] = multiprocess_directories(storecast)
    assert any(directory.glob("*.db"))  # the workers' files


def test_a_service_alone_serves_its_own_metrics(tmp_path: Path) -> None:
    grpc_port, metrics_port = free_port(), free_port()
    env = {
        "STORECAST_STORE_URL": f"chdb://{tmp_path / 'store'}",
        "STORECAST_GRPC_PORT": str(grpc_port),
        "STORECAST_METRICS_PORT": str(metrics_port),
        "TMPDIR": str(tmp_path),
    }
    ingest = spawn("ingest", tmp_path, env)
    try:
        target = f"127.0.0.1:{grpc_port}"
        wait_for_health(target, ingest, "storecast.v1.Ingest")
        body = json.dumps({"values": [{"timestamp": T0, "id": 1, "p": 1.0}, {"timestamp": T0 + 1000, "id": 1}]}).encode()
        with grpc.insecure_channel(target) as channel:
            request = ingest_pb2.PutProductionRequest(site_id=SITE, equipment_type=catalog_pb2.RENEWABLE, v1_json=body)
            assert ingest_pb2_grpc.IngestStub(channel).PutProduction(request, timeout=30).stored == 2
        samples = scrape(metrics_port)
    finally:
        ingest.terminate()
        assert ingest.wait(timeout=60) == 0
    assert value(samples, "storecast_records_written_total", category="production", type="renewable") == 2
    handled = {"service": "storecast.v1.Ingest", "method": "PutProduction", "code": "OK", "api_status": "1000"}
    assert value(samples, "storecast_grpc_server_handled_total", **handled) == 1
    # No gateway here: its families are declared, with no sample.
    assert not any(name.startswith("storecast_http_requests_total") for name, _ in samples)
    assert not any(tmp_path.glob("storecast-metrics-*"))  # no multiprocess directory outside `serve all`
