"""The Prometheus query API under /ext/prom through the real gateway: Grafana's calls, the
evaluation's edges as Prometheus 3 specifies them, identity and permissions, refusals,
promtool as a client, and hostile input. tests/test_prom_differential.py compares
the answers with a real Prometheus."""

from __future__ import annotations

import http.server
import json
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from storecast.v1 import query_pb2, query_pb2_grpc
from tests.conftest import Storecast, ok, put
from tests.helpers import HOUR, MINUTE, T0, JsonObject, rpc_failure

API = "/ext/prom/api/v1"
GZIP = {"Accept-Encoding": "gzip"}
FORM = {"Content-Type": "application/x-www-form-urlencoded", **GZIP}


def success(response: httpx.Response) -> Any:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["status"] == "success", body
    return body["data"]


def refused(response: httpx.Response, http_status: int, error_type: str, *fragments: str) -> None:
    assert response.status_code == http_status, response.text
    body = response.json()
    assert body["status"] == "error" and body["errorType"] == error_type, body
    for fragment in fragments:
        assert fragment in body["error"], body


def write_meter(client: httpx.Client, site: int, equipment_id: int, values: list[tuple[int, float]]) -> None:
    records = [{"timestamp": stamp, "id": equipment_id, "l1_p": value} for stamp, value in values]
    ok(put(client, f"/v1/{site}/production/meter-3p", records), 201)


def vector(data: JsonObject) -> dict[tuple[tuple[str, str], ...], tuple[float, str]]:
    assert data["resultType"] == "vector", data
    return {tuple(sorted(s["metric"].items())): (s["value"][0], s["value"][1]) for s in data["result"]}


# ---- Grafana's calls -------------------------------------------------------------------


def test_grafana_data_source_call_sequence(storecast: Storecast, admin: httpx.Client, site: int) -> None:
    """What Grafana 12's Prometheus data source sends in its default POST mode (docs/api/prometheus.md)."""
    write_meter(admin, site, 1, [(T0 + i * MINUTE, float(i)) for i in range(120)])
    selector = f'storecast_meter_3p_l1_p{{site_id="{site}"}}'
    with storecast.client("reader") as grafana:
        # Save & test: an instant query of 1+1 at time 4, a scalar; then the build information.
        save_and_test = success(grafana.post(f"{API}/query", content="query=1%2B1&time=4", headers=FORM))
        assert save_and_test == {"resultType": "scalar", "result": [4, "2"]}
        assert success(grafana.get(f"{API}/status/buildinfo", headers=GZIP))["version"].startswith("3.")
        # The query editor: metric names, metadata, label names.
        names = success(grafana.get(f"{API}/label/__name__/values", headers=GZIP))
        assert "storecast_meter_3p_l1_p" in names and names == sorted(names)
        metadata = success(grafana.get(f"{API}/metadata", headers=GZIP))
        assert (
            metadata["storecast_meter_3p_l1_p"]
            == [{"type": "gauge", "help": "meter-3p (AC 3-phases meter): active power phase 1", "unit": "kW"}]
            or metadata["storecast_meter_3p_l1_p"][0]["type"] == "gauge"
        )
        window = {"start": str(T0 // 1000), "end": str(T0 // 1000 + 7200)}
        assert success(grafana.post(f"{API}/labels", data=window, headers=GZIP)) == ["__name__", "id", "site_id"]
        # The metrics browser: values of a label under a selector, label names and series with a limit.
        values = grafana.get(f"{API}/label/id/values", params={"match[]": selector, **window}, headers=GZIP)
        assert success(values) == ["1"]
        assert success(grafana.post(f"{API}/labels", data={"match[]": selector, **window}, headers=GZIP)) == [
            "__name__",
            "id",
            "site_id",
        ]
        series = success(grafana.post(f"{API}/series", data={"match[]": selector, "limit": "40000", **window}, headers=GZIP))
        assert series == [{"__name__": "storecast_meter_3p_l1_p", "id": "1", "site_id": str(site)}]
        # A panel: a range query aligned to its step, then an instant query.
        start, step = T0 // 1000 // 900 * 900, 900
        form = {"query": f"avg_over_time({selector}[15m])", "start": str(start), "end": str(start + 3600), "step": str(step)}
        matrix = success(grafana.post(f"{API}/query_range", data=form, headers=GZIP))
        assert matrix["resultType"] == "matrix"
        (only,) = matrix["result"]
        assert only["metric"] == {"id": "1", "site_id": str(site)}
        # (t - 15m, t]: at T0 + 15 min the minutes 1 to 15, whose values are 1 to 15.
        assert only["values"][1] == [start + 900, "8"]
        instant = success(grafana.post(f"{API}/query", data={"query": selector, "time": str(T0 // 1000 + 3600)}, headers=GZIP))
        assert list(vector(instant).values()) == [(T0 // 1000 + 3600, "60")]
        # On load: rules and exemplars, empty.
        assert success(grafana.get(f"{API}/rules", headers=GZIP)) == {"groups": []}
        assert success(grafana.post(f"{API}/query_exemplars", data=form, headers=GZIP)) == []


def test_every_query_of_the_site_dashboard_is_answered(admin: httpx.Client, site: int) -> None:
    """deploy/helm/storecast/dashboards/site.json, its $site set, over a day of one site's data."""
    minutes = range(0, 24 * 60, 5)
    ok(put(admin, f"/v1/{site}/production/renewable", [{"timestamp": T0 + m * MINUTE, "id": 1, "p": 10.0} for m in minutes]), 201)
    ok(put(admin, f"/v1/{site}/production/battery", [{"timestamp": T0 + m * MINUTE, "id": 1, "soc": 50.0} for m in minutes]), 201)
    ok(put(admin, f"/v1/{site}/production/meter", [{"timestamp": T0 + m * MINUTE, "id": 1, "p": -3.0} for m in minutes]), 201)
    phases = [{"timestamp": T0 + m * MINUTE, "id": 2, "l1_p": 1.0, "l2_p": 2.0, "l3_p": 3.0} for m in minutes]
    ok(put(admin, f"/v1/{site}/production/meter-3p", phases), 201)
    for creation in (T0 - 24 * HOUR, T0):
        periods = [{"timestamp": creation + q * 15 * MINUTE, "p": 12.0} for q in range(2 * 24 * 4)]
        ok(put(admin, f"/v1/{site}/forecast/solar", [{"creation_timestamp": creation, "id": 1, "values": periods}]), 201)
    dashboard = json.loads((Path(__file__).parents[1] / "deploy/helm/storecast/dashboards/site.json").read_text())
    window = {"start": str(T0 // 1000), "end": str(T0 // 1000 + 86_400), "step": "600"}
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            query = target["expr"].replace("$site", str(site))
            matrix = success(admin.post(f"{API}/query_range", data={"query": query, **window}))
            assert matrix["resultType"] == "matrix" and matrix["result"], (panel["title"], query)


def test_answers_are_gzip_encoded_when_asked(storecast: Storecast) -> None:
    with storecast.client("reader") as client:
        response = client.get(f"{API}/metadata", headers=GZIP)
        assert response.headers["content-encoding"] == "gzip"
        assert response.json()["status"] == "success"  # httpx decodes it


def test_metadata_of_one_metric_and_at_most_limit_metrics(storecast: Storecast) -> None:
    with storecast.client("reader") as client:
        every = success(client.get(f"{API}/metadata"))
        one = success(client.get(f"{API}/metadata", params={"metric": "storecast_meter_3p_l1_p"}))
        assert one == {"storecast_meter_3p_l1_p": every["storecast_meter_3p_l1_p"]}
        assert success(client.get(f"{API}/metadata", params={"metric": "no_such_metric"})) == {}
        assert list(success(client.get(f"{API}/metadata", params={"limit": "2"}))) == sorted(every)[:2]
        assert success(client.get(f"{API}/metadata", params={"limit": "0"})) == {}
        assert success(client.get(f"{API}/metadata", params={"limit": "-1"})) == every
        refused(client.get(f"{API}/metadata", params={"limit": "many"}), 400, "bad_data", "limit must be a number")


# ---- Evaluation as Prometheus 3 specifies it ------------------------------------------------


def test_windows_are_open_on_the_left_and_closed_on_the_right(admin: httpx.Client, site: int) -> None:
    """A range (t - r, t] and the 5-minute lookback (t - 5m, t], at the millisecond."""
    t = T0 + 60 * MINUTE
    write_meter(admin, site, 1, [(t - 10 * MINUTE, 1.0), (t - 10 * MINUTE + 1, 2.0), (t, 4.0)])
    write_meter(admin, site, 2, [(t - 5 * MINUTE, 8.0)])
    write_meter(admin, site, 3, [(t - 5 * MINUTE + 1, 16.0)])

    def at(query: str, moment: int) -> dict[str, str]:
        data = success(admin.get(f"{API}/query", params={"query": query, "time": f"{moment / 1000:.3f}"}))
        return {dict(labels)["id"]: value for labels, (_, value) in vector(data).items()}

    meter = f'storecast_meter_3p_l1_p{{site_id="{site}"}}'
    assert at(f'sum_over_time({meter}{{id="1"}}[10m])'.replace("}{", ","), t) == {"1": "6"}
    # At t + 1 ms, t - 10m + 1 is on the left edge: out.
    counted = f'count_over_time({meter}{{id="1"}}[10m])'.replace("}{", ",")
    assert [at(counted, moment) for moment in (t - 1, t, t + 1)] == [{"1": "2"}, {"1": "2"}, {"1": "1"}]
    # The same over steps of 1 ms, whose windows overlap (evaluated from the samples, not by the engine).
    steps = {"query": counted, "start": f"{(t - 1) / 1000:.3f}", "end": f"{(t + 1) / 1000:.3f}", "step": "0.001"}
    (series,) = success(admin.get(f"{API}/query_range", params=steps))["result"]
    assert [value for _, value in series["values"]] == ["2", "2", "1"]
    # Lookback: 8 at t - 5m is out of (t - 5m, t], 16 at t - 5m + 1 ms in.
    assert at(meter, t) == {"1": "4", "3": "16"}
    # At t - 1 ms, meter 1's newest sample (t - 10m + 1) is past the lookback.
    assert at(meter, t - 1) == {"2": "8", "3": "16"}


def test_a_record_just_written_is_seen_at_once(admin: httpx.Client, site: int) -> None:
    now = time.time_ns() // 1_000_000
    write_meter(admin, site, 1, [(now - 1000, 42.5)])
    data = success(
        admin.get(f"{API}/query", params={"query": f'storecast_meter_3p_l1_p{{site_id="{site}"}}', "time": now / 1000})
    )
    assert [value for _, value in vector(data).values()] == ["42.5"]


def test_regex_matchers_are_anchored_and_never_reach_sql(admin: httpx.Client, site: int) -> None:
    for equipment_id in (1, 11, 21):
        write_meter(admin, site, equipment_id, [(T0, float(equipment_id))])
    moment = str(T0 // 1000 + 60)

    def ids(matchers: str) -> list[str]:
        data = success(
            admin.post(f"{API}/query", data={"query": f'storecast_meter_3p_l1_p{{site_id="{site}",{matchers}}}', "time": moment})
        )
        return sorted(dict(labels)["id"] for labels in vector(data))

    assert ids('id=~"1"') == ["1"]
    assert ids('id=~"1.*"') == ["1", "11"]
    assert ids('id!~".1"') == ["1"]
    assert ids('id=~"1\' OR 1=1 --"') == []
    assert ids('id="1 OR 1=1"') == []
    assert ids('id=~"(?i)1|21"') == ["1", "21"]


def test_range_query_steps_and_scalars(admin: httpx.Client) -> None:
    data = success(admin.get(f"{API}/query_range", params={"query": "2 * 3", "start": "10", "end": "40", "step": "15s"}))
    assert data == {"resultType": "matrix", "result": [{"metric": {}, "values": [[10, "6"], [25, "6"], [40, "6"]]}]}
    values = success(admin.get(f"{API}/query", params={"query": "1 / 0", "time": "1.5"}))
    assert values == {"resultType": "scalar", "result": [1.5, "+Inf"]}
    assert success(admin.get(f"{API}/query", params={"query": "0 / 0", "time": "1"}))["result"][1] == "NaN"
    assert success(admin.get(f"{API}/query", params={"query": "-7 % 3", "time": "1"}))["result"][1] == "-1"
    assert success(admin.get(f"{API}/query", params={"query": "0.1 + 0.2", "time": "1"}))["result"][1] == "0.30000000000000004"
    assert success(admin.get(f"{API}/query", params={"query": "1e21", "time": "1"}))["result"][1] == "1000000000000000000000"


# ---- Identity and permissions ------------------------------------------------------------------


def test_a_site_limited_certificate_sees_only_its_sites(storecast: Storecast, admin: httpx.Client, site: int) -> None:
    equipment_id = 4_000_000_000 + site % 100_000  # an id no other test writes
    write_meter(admin, 100, equipment_id, [(T0, 1.0)])
    write_meter(admin, site, equipment_id, [(T0, 2.0)])
    selector = f'storecast_meter_3p_l1_p{{id="{equipment_id}"}}'
    moment = str(T0 // 1000 + 60)
    with storecast.client("reader") as reader:
        assert len(vector(success(reader.get(f"{API}/query", params={"query": selector, "time": moment})))) == 2
    with storecast.client("site100") as limited:
        seen = vector(success(limited.get(f"{API}/query", params={"query": f"sum by (site_id) ({selector})", "time": moment})))
        assert seen == {(("site_id", "100"),): (T0 // 1000 + 60, "1")}
        assert success(limited.get(f"{API}/series", params={"match[]": selector})) == [
            {"__name__": "storecast_meter_3p_l1_p", "id": str(equipment_id), "site_id": "100"}
        ]
        assert success(limited.get(f"{API}/label/site_id/values")) == ["100"]
        # A site it may not read is no error: its series are not there.
        other = success(limited.get(f"{API}/query", params={"query": f'{selector[:-1]},site_id="{site}"}}', "time": moment}))
        assert other["result"] == []


def test_who_may_ask(storecast: Storecast) -> None:
    with storecast.client(None) as anonymous:
        refused(anonymous.get(f"{API}/query", params={"query": "1"}), 401, "unauthorized", "client certificate")
    with storecast.client("stranger") as stranger:
        refused(stranger.get(f"{API}/query", params={"query": "1"}), 403, "forbidden", "'stranger'")
        refused(stranger.get(f"{API}/status/buildinfo"), 403, "forbidden")
    with storecast.client("writer-only") as writer:
        refused(writer.get(f"{API}/series", params={"match[]": "up"}), 403, "forbidden", "may not read")
        assert success(writer.get(f"{API}/status/buildinfo"))["version"]


# ---- Refusals --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "fragment"),
    [
        ("rate(storecast_meter_3p_l1_p[5m])", "function rate() is not supported"),
        ("topk(2, storecast_meter_3p_l1_p)", "aggregation topk is not supported"),
        ("storecast_meter_3p_l1_p > 1", "binary operator > is not supported"),
        ("storecast_meter_3p_l1_p + storecast_meter_3p_l2_p", "between two instant vectors"),
        ("avg_over_time(storecast_meter_3p_l1_p[1h:5m])", "subquer"),
        ("storecast_meter_3p_l1_p @ 100", "@ modifier"),
        ('storecast_meter_3p_l1_p{id=~"(?=1)"}', "regex"),
        ('storecast_meter_3p_l1_p{id=~"(a)\\\\1"}', "invalid"),
        ('"text"', "string literals"),
        ('storecast_forecast_solar_p{horizon=~"24h|48h"}', 'horizon="24h"'),
        ('storecast_forecast_solar_p{horizon="soon"}', "horizon must be a duration"),
        ("sum(", 'invalid parameter "query"'),
        ("", 'invalid parameter "query"'),
    ],
)
def test_unsupported_or_bad_queries_are_bad_data(admin: httpx.Client, query: str, fragment: str) -> None:
    refused(admin.post(f"{API}/query", data={"query": query, "time": "100"}), 400, "bad_data", fragment)


def test_range_parameters_are_checked_as_prometheus_checks_them(admin: httpx.Client) -> None:
    def range_query(**params: str) -> httpx.Response:
        return admin.get(f"{API}/query_range", params={"query": "1", **params})

    refused(range_query(start="100", end="200"), 400, "bad_data", 'invalid parameter "step"')
    refused(range_query(start="x", end="200", step="1"), 400, "bad_data", 'invalid parameter "start"')
    refused(range_query(start="300", end="200", step="1"), 400, "bad_data", "end timestamp must not be before start time")
    refused(range_query(start="100", end="200", step="0"), 400, "bad_data", "zero or negative")
    refused(range_query(start="0", end="11001", step="1"), 400, "bad_data", "exceeded maximum resolution of 11,000 points")
    assert len(success(range_query(start="0", end="11000", step="1"))["result"][0]["values"]) == 11001
    rfc3339 = success(range_query(start="2018-08-24T10:00:00Z", end="2018-08-24T10:01:00.5Z", step="1m"))
    assert rfc3339["result"][0]["values"] == [[T0 // 1000, "1"], [T0 // 1000 + 60, "1"]]
    refused(
        admin.post(f"{API}/query_range", data={"query": "storecast_meter_3p_l1_p[5m]", "start": "1", "end": "2", "step": "1"}),
        400,
        "bad_data",
        "range vector",
    )
    refused(admin.get(f"{API}/series"), 400, "bad_data", "no match[] parameter provided")
    refused(admin.get(f"{API}/series", params={"match[]": "sum(x)"}), 400, "bad_data", "not a series selector")
    refused(admin.get(f"{API}/label/1x/values"), 400, "bad_data", "invalid label name")


def test_two_series_of_one_label_set_are_an_execution_error(admin: httpx.Client, site: int) -> None:
    records = [{"timestamp": T0, "id": 1, "l1_p": 1.0, "l2_p": 2.0}]
    ok(put(admin, f"/v1/{site}/production/meter-3p", records), 201)
    query = f'{{__name__=~"storecast_meter_3p_l._p",site_id="{site}"}} * 2'
    refused(admin.get(f"{API}/query", params={"query": query, "time": T0 // 1000}), 422, "execution", "same labelset")


def test_a_query_holding_too_many_points_is_an_execution_error(admin: httpx.Client, site: int) -> None:
    """460 series over 11,001 steps: more than the 5,000,000 points a query may hold."""
    ok(put(admin, f"/v1/{site}/production/meter-3p", [{"timestamp": 5_000_000, "id": i, "l1_p": 1.0} for i in range(460)]), 201)
    query = f'storecast_meter_3p_l1_p{{site_id="{site}"}}'
    fewer = success(admin.get(f"{API}/query_range", params={"query": query, "start": "0", "end": "11000", "step": "2"}))
    assert len(fewer["result"]) == 460
    response = admin.get(f"{API}/query_range", params={"query": query, "start": "0", "end": "11000", "step": "1"})
    refused(response, 422, "execution", "too many samples")


def test_paths_and_methods(admin: httpx.Client) -> None:
    refused(admin.get(f"{API}/nope"), 404, "not_found")
    refused(admin.get("/ext/prom/api/v2/query"), 404, "not_found")
    response = admin.delete(f"{API}/query")
    refused(response, 405, "bad_data")
    assert response.headers["allow"] == "GET, POST"
    refused(admin.post(f"{API}/metadata"), 405, "bad_data")


def test_internal_callers_get_the_same_refusals(grpc_channel: grpc.Channel) -> None:
    stub = query_pb2_grpc.QueryStub(grpc_channel)
    every_site = query_pb2.SiteScope(every_site=True)
    code, failure = rpc_failure(
        lambda: stub.PromQuery(query_pb2.PromQueryRequest(query="rate(x[5m])", end_ms=1, sites=every_site))
    )
    assert code is grpc.StatusCode.INVALID_ARGUMENT and "rate() is not supported" in failure.message
    reply = stub.PromQuery(query_pb2.PromQueryRequest(query="1+1", start_ms=0, end_ms=60_000, step_ms=30_000, sites=every_site))
    assert reply.result_type == query_pb2.PROM_MATRIX and list(reply.series[0].values) == [2.0, 2.0, 2.0]


# ---- promtool as a client ----------------------------------------------------------------------


class _Forward(http.server.BaseHTTPRequestHandler):
    """Plain HTTP in, the gateway over mTLS out (Debian's promtool 2.42 has no --http.config.file)."""

    client: httpx.Client

    def _forward(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length") or 0))
        headers = {k: v for k, v in self.headers.items() if k.lower() in ("content-type", "accept-encoding")}
        response = self.client.request(self.command, self.path.replace("/api/v1/", f"{API}/", 1), content=body, headers=headers)
        self.send_response(response.status_code)
        for name in ("content-type",):
            self.send_header(name, response.headers[name])
        self.send_header("content-length", str(len(response.content)))
        self.end_headers()
        self.wfile.write(response.content)

    do_GET = do_POST = _forward

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def promtool_url(storecast: Storecast) -> Iterator[str]:
    with storecast.client("reader") as client:
        handler = type("Forward", (_Forward,), {"client": client})
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        yield f"http://127.0.0.1:{server.server_address[1]}"
        server.shutdown()


def test_promtool_queries_read_the_answers(admin: httpx.Client, promtool_url: str, site: int) -> None:
    write_meter(admin, site, 5, [(T0 + i * MINUTE + 500, float(i)) for i in range(60)])
    selector = f'storecast_meter_3p_l1_p{{site_id="{site}"}}'
    ran = subprocess.run(
        ["promtool", "query", "range", "-o", "json", f"--start={T0 // 1000}", f"--end={T0 // 1000 + 1800}", "--step=10m"]
        + [promtool_url, f"max_over_time({selector}[10m])"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert ran.returncode == 0, ran.stderr
    (series,) = json.loads(ran.stdout)
    assert series["metric"] == {"id": "5", "site_id": str(site)}
    # Nothing in (T0 - 10m, T0]: the first sample is at T0 + 500 ms.
    assert series["values"] == [[T0 // 1000 + 600, "9"], [T0 // 1000 + 1200, "19"], [T0 // 1000 + 1800, "29"]]
    ran = subprocess.run(
        [
            "promtool",
            "query",
            "series",
            f"--match={selector}",
            f"--start={T0 // 1000}",
            f"--end={T0 // 1000 + 3600}",
            promtool_url,
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert ran.returncode == 0 and f'site_id="{site}"' in ran.stdout, ran.stderr
    ran = subprocess.run(
        ["promtool", "query", "instant", promtool_url, "rate(x[5m])"], capture_output=True, text=True, timeout=60
    )
    assert ran.returncode != 0 and "rate() is not supported" in ran.stderr


# ---- Hostile input -------------------------------------------------------------------------------

_PIECES = st.sampled_from(
    [
        "storecast_meter_3p_l1_p",
        "{",
        "}",
        "(",
        ")",
        "[5m]",
        "[0s]",
        "[100000d]",
        'id=~"',
        '"',
        "(a+)+$",
        ".*.*.*.*.*.*=",
        "\\",
        ",",
        "sum",
        "by (id)",
        "avg_over_time(",
        "offset 1y",
        " + ",
        " / 0",
        "1e308",
        "-",
        "__name__=~",
        "@",
        "\x00",
        "é",
    ]
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    query=st.one_of(st.text(max_size=80), st.lists(_PIECES, max_size=12).map("".join)), step=st.sampled_from(["1", "60", "3600"])
)
def test_fuzzed_queries_never_fail_the_server(admin: httpx.Client, query: str, step: str) -> None:
    started = time.monotonic()
    response = admin.post(f"{API}/query_range", data={"query": query, "start": "1535000000", "end": "1535100000", "step": step})
    assert response.status_code in (200, 400, 422), response.text
    assert response.json()["status"] in ("success", "error")
    assert time.monotonic() - started < 30


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    name=st.sampled_from(["id", "site_id", "__name__", "other"]),
    op=st.sampled_from(["=", "!=", "=~", "!~"]),
    value=st.text(max_size=40),
)
def test_fuzzed_matchers_never_fail_the_server(admin: httpx.Client, name: str, op: str, value: str) -> None:
    selector = f"storecast_meter_3p_l1_p{{{name}{op}{json.dumps(value)}}}"
    for path, params in ((f"{API}/query", {"query": selector, "time": "1535104900"}), (f"{API}/series", {"match[]": selector})):
        response = admin.get(path, params=params)
        assert response.status_code in (200, 400), response.text
