"""The InfluxDB write APIs under /ext/influx through the real gateway, with the official clients
(`influxdb` for 1.x, `influxdb-client` for 2.x) over real mTLS, read back through v1's GET."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from influxdb import InfluxDBClient
from influxdb.exceptions import InfluxDBClientError
from influxdb_client.client.exceptions import InfluxDBError
from influxdb_client.client.influxdb_client import InfluxDBClient as InfluxDB2Client
from influxdb_client.client.write_api import SYNCHRONOUS

from tests.conftest import Storecast, ok
from tests.helpers import T0, JsonObject

SITE100 = 100
METER_3P = ("l1_p", "l2_p", "l3_p", "l1_q", "l2_q", "l3_q", "l1_i", "l2_i", "l3_i", "l12_u", "l23_u", "l31_u", "f")
WRITE_V1, WRITE_V2 = "/ext/influx/write", "/ext/influx/api/v2/write"


def v1_client(storecast: Storecast, name: str = "admin", database: str | None = None) -> InfluxDBClient:
    port = int(storecast.base_url.rsplit(":", 1)[1])
    return InfluxDBClient(
        host="localhost",
        port=port,
        database=database,
        ssl=True,
        verify_ssl=str(storecast.pki.ca),
        cert=storecast.pki.cert(name),
        path="ext/influx",
    )


@pytest.fixture
def v2_client(storecast: Storecast) -> Iterator[InfluxDB2Client]:
    cert, key = storecast.pki.cert("admin")
    with InfluxDB2Client(
        url=f"{storecast.base_url}/ext/influx",
        token="ignored",
        org="ignored",
        ssl_ca_cert=str(storecast.pki.ca),
        cert_file=cert,
        cert_key_file=key,
    ) as client:
        yield client


def records(admin: httpx.Client, site: int, equipment: str, equipment_id: int) -> list[JsonObject]:
    """The equipment's records, each checked to carry its id, without it."""
    results: list[JsonObject] = ok(admin.get(f"/v1/{site}/production/{equipment}/{equipment_id}"))["results"]
    assert all(record.pop("id") == equipment_id for record in results), results
    return results


def write(client: httpx.Client, site: int, body: str, path: str = WRITE_V1, **query: str) -> httpx.Response:
    name = "db" if path == WRITE_V1 else "bucket"
    return client.post(path, params={name: str(site), **query}, content=body.encode())


def refused(response: httpx.Response, http_status: int, *fragments: str) -> None:
    assert response.status_code == http_status, response.text
    error = response.json()["error"]
    for fragment in fragments:
        assert fragment in error, error


# ---- the official clients ---------------------------------------------------------------


def test_v1_client_writes_points_read_back_exactly(storecast: Storecast, admin: httpx.Client, site: int) -> None:
    client = v1_client(storecast)
    assert client.ping() == "storecast"
    points = [
        {
            "measurement": "meter-3p",
            "tags": {"id": "7", "host": "edge1"},
            "time": T0 + k * 1000,
            "fields": dict.fromkeys(METER_3P, 1.5 * k),
        }
        for k in range(3)
    ] + [{"measurement": "battery", "tags": {"id": "2"}, "time": T0, "fields": {"soc": 0.5, "state": 3}}]
    assert client.write_points(points, time_precision="ms", database=str(site))
    assert records(admin, site, "meter-3p", 7) == [
        {"timestamp": T0 + k * 1000, **dict.fromkeys(METER_3P, 1.5 * k)} for k in range(3)
    ]
    battery = records(admin, site, "battery", 2)
    assert battery == [
        {
            "timestamp": T0,
            "soc": 0.5,
            "state": 3,
            "e": None,
            "p": None,
            "p_ch": None,
            "p_disch": None,
            "q": None,
            "q_max": None,
            "q_min": None,
        }
    ]


def test_v1_client_sees_errors(storecast: Storecast, site: int) -> None:
    client = v1_client(storecast, database=str(site))
    with pytest.raises(InfluxDBClientError) as refusal:
        client.write_points(
            [{"measurement": "meter", "tags": {"id": "1"}, "time": T0, "fields": {"x": 1.0}}], time_precision="ms"
        )
    assert refusal.value.code == 400 and "unknown field 'x' for meter" in refusal.value.content


def test_v2_client_writes_and_reads_back(
    storecast: Storecast, admin: httpx.Client, site: int, v2_client: InfluxDB2Client
) -> None:
    assert v2_client.ping()
    writer = v2_client.write_api(write_options=SYNCHRONOUS)
    writer.write(bucket=str(site), record=f"meter,id=3 p=1.25,q=-2i {T0 * 10**6}")
    writer.write(bucket=str(site), record=[f"thermometer,id=4 t=21.5 {T0 * 10**6 + 5}"])
    assert records(admin, site, "meter", 3) == [{"timestamp": T0, "p": 1.25, "q": -2.0, "f": None, "u": None, "i": None}]
    assert records(admin, site, "thermometer", 4) == [{"timestamp": T0, "t": 21.5}]
    with pytest.raises(InfluxDBError) as refusal:
        writer.write(bucket=str(site), record='meter,id=3 p="high"')
    assert "expected a number, got a string" in refusal.value.message


# ---- mapping ----------------------------------------------------------------------------

PRECISIONS = {"n": 10**6, "ns": 10**6, "u": 1000, "us": 1000, "ms": 1, "s": 1 / 1000, "m": 1 / 60_000, "h": 1 / 3_600_000}


@pytest.mark.parametrize("precision", PRECISIONS)
@pytest.mark.parametrize("path", [WRITE_V1, WRITE_V2])
def test_precisions(admin: httpx.Client, site: int, precision: str, path: str) -> None:
    stamp = T0 - T0 % 3_600_000  # a whole hour, which every precision can spell
    line = f"metric,id=1 value=2 {int(stamp * PRECISIONS[precision])}"
    assert write(admin, site, line, path, precision=precision).status_code == 204
    assert records(admin, site, "metric", 1) == [{"timestamp": stamp, "value": 2.0}]


def test_default_precision_is_ns_floored_to_the_ms(admin: httpx.Client, site: int) -> None:
    assert write(admin, site, f"metric,id=1 value=1 {T0 * 10**6 + 999_999}").status_code == 204
    assert records(admin, site, "metric", 1) == [{"timestamp": T0, "value": 1.0}]


def test_line_without_timestamp_takes_the_time_of_receipt(admin: httpx.Client, site: int) -> None:
    before = time.time_ns() // 10**6
    assert write(admin, site, "metric,id=1 value=1").status_code == 204
    after = time.time_ns() // 10**6
    (record,) = records(admin, site, "metric", 1)
    assert before <= record["timestamp"] <= after


def test_mixed_measurements_merged_points_escapes_and_comments(admin: httpx.Client, site: int) -> None:
    body = "\n".join(
        [
            "# a comment, then a blank line",
            "",
            f"meter,id=1,host=a\\ b p=1,q=2 {T0}",
            f"status,id=9 value=4u {T0}",
            f"setpoint,id=5 command=2 {T0}",  # an integral float for an unsigned attribute
            f'meter,id=1,note="x\\,y" f=50 {T0}',  # the same point again: its fields merge
            f"meter,id=1 p=3 {T0 + 1}",
            f"meter,id=2 u=230i {T0}\r",
        ]
    )
    assert write(admin, site, body, precision="ms").status_code == 204
    assert records(admin, site, "meter", 1) == [
        {"timestamp": T0, "p": 1.0, "q": 2.0, "f": 50.0, "u": None, "i": None},
        {"timestamp": T0 + 1, "p": 3.0, "q": None, "f": None, "u": None, "i": None},
    ]
    assert records(admin, site, "meter", 2) == [{"timestamp": T0, "p": None, "q": None, "f": None, "u": 230.0, "i": None}]
    assert records(admin, site, "status", 9) == [{"timestamp": T0, "value": 4}]
    assert records(admin, site, "setpoint", 5) == [{"timestamp": T0, "p": None, "q": None, "command": 2}]


BAD_LINES = {
    "unknown measurement": (f"windmill,id=1 p=1 {T0}", "unknown measurement 'windmill'"),
    "unknown field": (f"meter-3p,id=1 x=1 {T0}", "unknown field 'x' for meter-3p"),
    "no id tag": (f"meter,host=a p=1 {T0}", "missing tag 'id'"),
    "bad id tag": (f"meter,id=-1 p=1 {T0}", "tag 'id' must be an unsigned 32-bit integer, got '-1'"),
    "id beyond uint32": (f"meter,id=4294967296 p=1 {T0}", "tag 'id' must be an unsigned 32-bit integer"),
    "string value": (f'meter,id=1 p="1" {T0}', "field 'p' of meter: expected a number, got a string"),
    "boolean value": (f"meter,id=1 p=t {T0}", "expected a number, got a boolean"),
    "fractional unsigned": (f"status,id=1 value=1.5 {T0}", "expected an unsigned 32-bit integer, got 1.5"),
    "negative unsigned": (f"status,id=1 value=-1i {T0}", "expected an unsigned 32-bit integer, got -1"),
    "unsigned beyond uint32": (f"status,id=1 value=4294967296u {T0}", "expected an unsigned 32-bit integer"),
    "nan": (f"meter,id=1 p=nan {T0}", "field 'p': bad value 'nan'"),
    "infinite": (f"meter,id=1 p=1e999 {T0}", "beyond a 64-bit float's range"),
    "bad timestamp": (f"meter,id=1 p=1 {T0}.5", "bad timestamp"),
    "negative timestamp": ("meter,id=1 p=1 -1", "outside 1970-01-01 to 2200-01-01"),
    "timestamp after 2200": ("meter,id=1 p=1 7258118400000", "outside 1970-01-01 to 2200-01-01"),
    "no fields": ("meter,id=1", "missing fields"),
    "trailing text": (f"meter,id=1 p=1 {T0} extra", "unexpected text after the timestamp"),
}


@pytest.mark.parametrize("case", BAD_LINES)
def test_bad_line_in_the_middle_stores_nothing(admin: httpx.Client, site: int, case: str) -> None:
    line, message = BAD_LINES[case]
    body = f"metric,id=1 value=1 {T0}\nthermometer,id=2 t=1 {T0}\n{line}\nmetric,id=1 value=2 {T0 + 1}"
    refused(write(admin, site, body, precision="ms"), 400, "unable to parse line 3: ", message)
    for equipment, equipment_id in (("metric", 1), ("thermometer", 2)):
        assert admin.get(f"/v1/{site}/production/{equipment}/{equipment_id}").status_code == 400  # never stored


def test_v2_errors_carry_code_and_message(admin: httpx.Client, site: int) -> None:
    response = write(admin, site, "meter,id=1 x=1", WRITE_V2)
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid" and body["message"] == body["error"] == "unable to parse line 1: unknown field 'x' for meter"


def test_request_errors(storecast: Storecast, admin: httpx.Client, site: int) -> None:
    refused(admin.post(WRITE_V1, content=b"metric,id=1 value=1"), 400, "db is required")
    refused(admin.post(WRITE_V2, content=b"metric,id=1 value=1"), 400, "bucket is required")
    refused(write(admin, "telegraf", "metric,id=1 value=1"), 404, "db not found")  # type: ignore[arg-type]
    refused(write(admin, site, "metric,id=1 value=1", precision="d"), 400, "precision must be one of")
    refused(write(admin, site, "\n# nothing\n"), 400, "writing requires points")
    refused(admin.post(WRITE_V1, params={"db": site}, content=b"metric,id=1 value=\xff"), 400, "not UTF-8")
    refused(admin.get(WRITE_V1, params={"db": site}), 405, "use POST")
    refused(admin.post("/ext/influx/query", params={"q": "SHOW DATABASES"}), 404, "no /ext/influx endpoint")
    too_large = "\n".join(f"metric,id=1 value={k} {T0 + k}" for k in range(200_000))
    refused(write(admin, site, too_large, precision="ms"), 413, "larger than")
    assert admin.get(f"/v1/{site}/production/metric/1").status_code == 400


def test_identity_and_permissions(storecast: Storecast, site: int) -> None:
    line = f"metric,id=1 value=1 {T0}"
    with storecast.client(None) as anonymous:
        refused(write(anonymous, SITE100, line, precision="ms"), 401, "client certificate is required")
        assert anonymous.get("/ext/influx/ping").status_code == 204
        assert anonymous.get("/ext/influx/health").json()["status"] == "pass"
    with storecast.client("site100") as site100:
        assert write(site100, SITE100, line, precision="ms").status_code == 204
        assert write(site100, SITE100, line, WRITE_V2, precision="ms").status_code == 204
        refused(write(site100, site, line, precision="ms"), 403, "may not write site")
        refused(write(site100, site, line, WRITE_V2, precision="ms"), 403, "may not write site")
    with storecast.client("reader") as reader:
        refused(write(reader, site, line, precision="ms"), 403, "may not write site")
    with storecast.client("stranger") as stranger:
        refused(write(stranger, site, line, precision="ms"), 403)
    # The official client, with the site-limited certificate.
    with pytest.raises(InfluxDBClientError) as refusal:
        v1_client(storecast, "site100").write_points(["metric,id=1 value=1"], database=str(site), protocol="line")
    assert refusal.value.code == 403


# ---- fuzz -------------------------------------------------------------------------------

_TOKENS = st.sampled_from(
    [
        "meter",
        "meter-3p",
        "status",
        ",",
        " ",
        "=",
        "id",
        "1",
        "-1",
        "p",
        "value",
        "1.5",
        "2i",
        "3u",
        "t",
        '"',
        "\\",
        "\n",
        "#",
        "nan",
        "1e999",
        str(T0),
        "l1_p",
        "x",
        "\r",
        "é",
        "\t",
        "99999999999999999999999",
    ]
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.lists(_TOKENS, max_size=40).map("".join) | st.text(max_size=200))
def test_fuzzed_line_protocol_never_fails_the_server(admin: httpx.Client, body: str) -> None:
    started = time.monotonic()
    response = admin.post(WRITE_V1, params={"db": "4000000000", "precision": "ms"}, content=body.encode())
    assert time.monotonic() - started < 5
    assert response.status_code in (204, 400), response.text
    assert response.status_code == 204 or response.json()["error"]
