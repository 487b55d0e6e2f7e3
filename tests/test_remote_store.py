"""One store shared by several storecast processes over ClickHouse's HTTP interface,
with tests/chdb_http.py as the server: what one instance writes, another reads, exactly.

First the stand-in alone, as clickhouse-connect uses it (per-request settings, compressed
and streamed inserts, the formats storecast reads, form-encoded parameters, errors);
then two full storecast instances (gateway and services each) on it."""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from statistics import fmean

import clickhouse_connect
import httpx
import lz4.frame
import pytest
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import DatabaseError

from services.lib.reads.render import JSON_ARRAY_SETTINGS
from services.lib.store.schema import PENDING_TABLE
from tests.conftest import MAX_RECORDS, FakeClickHouse, Pki, Storecast, ok, put, read_all, start_storecast, stop_storecast
from tests.helpers import HOUR, MINUTE, T0, JsonObject, Query


@pytest.fixture(scope="module")
def stand_in(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeClickHouse]:
    server = FakeClickHouse(tmp_path_factory.mktemp("clickhouse"))
    server.start()
    yield server
    server.kill()


def client_of(server: FakeClickHouse, settings: Mapping[str, str] = JSON_ARRAY_SETTINGS) -> Client:
    """A client as storecast makes one for an http store (services/lib/store/engine.py)."""
    return clickhouse_connect.get_client(
        host="127.0.0.1", port=server.port, autogenerate_session_id=False, settings=dict(settings)
    )


# --- the stand-in as clickhouse-connect uses it ----------------------------------------


def test_settings_apply_to_their_request_alone(stand_in: FakeClickHouse) -> None:
    client = client_of(stand_in)
    rule = "SELECT getSetting('format_custom_escaping_rule')"
    assert client.command(rule) == "Raw"  # the client's session settings, sent with every request
    assert client.command(rule, settings={"format_custom_escaping_rule": "JSON"}) == "JSON"
    assert client.command(rule) == "Raw"
    assert client_of(stand_in, settings={}).command(rule) == "Escaped"  # the engine's default
    # JSON_ARRAY_SETTINGS shape a CustomSeparated answer into a JSON array, as storecast reads it.
    rows = client.raw_query("SELECT number AS n, toString(number) AS s FROM numbers(3)", fmt="CustomSeparated")
    assert rows == b"[0\t0,\n1\t1,\n2\t2]"


def test_inserts_compressed_streamed_or_raw_are_stored(stand_in: FakeClickHouse) -> None:
    client = client_of(stand_in)
    client.command("CREATE DATABASE IF NOT EXISTS direct")
    client.command("CREATE TABLE direct.t (k UInt32, label String, x Nullable(Float64)) ENGINE = MergeTree ORDER BY k")
    assert client.write_compression == "lz4"
    # Large enough for several blocks: a chunked body of several lz4 frames.
    count = 1_500_000
    keys = list(range(count))
    summary = client.insert("direct.t", [keys], column_names=["k"], column_oriented=True)
    assert summary.written_rows == count
    # storecast's ingest: a Native block, the INSERT before it in the body, with settings.
    native = client.raw_query("SELECT toUInt32(7 + number) AS k, 'é\t\n' AS label, 0.5 AS x FROM numbers(2)", fmt="Native")
    client.raw_insert("direct.t", ["k", "label", "x"], native, fmt="Native", settings={"optimize_on_insert": 0})
    # Compressed by the caller, the block goes alone in the body and the INSERT in the URL.
    block = lz4.frame.compress(b'{"k": 9, "label": "z"}\n')
    client.raw_insert("direct.t", ["k", "label"], block, fmt="JSONEachRow", compression="lz4")
    assert client.query("SELECT count(), sum(k) FROM direct.t WHERE label = ''").result_rows == [(count, sum(keys))]
    stored = client.query("SELECT k, label, x FROM direct.t WHERE label != '' ORDER BY k, label").result_rows
    assert stored == [(7, "é\t\n", 0.5), (8, "é\t\n", 0.5), (9, "z", None)]


def test_answers_come_in_the_format_asked(stand_in: FakeClickHouse) -> None:
    client = client_of(stand_in)
    sql = "SELECT number AS n, toString(number) AS s FROM numbers(3) WHERE n >= {low:UInt64}"
    with client.query_arrow_stream(sql, {"low": 1}) as blocks:
        assert [row for block in blocks for row in block.to_pylist()] == [{"n": 1, "s": "1"}, {"n": 2, "s": "2"}]
    assert client.raw_query(sql, {"low": 2}, fmt="TabSeparatedRaw") == b"2\t2\n"
    assert client.raw_query(sql, {"low": 2}, fmt="JSONEachRow") == b'{"n":2,"s":"2"}\n'
    assert client.query(sql, {"low": 0}).result_rows == [(0, "0"), (1, "1"), (2, "2")]
    # An empty result still names its format; a statement without one answers a summary.
    assert client.command("SELECT 1 WHERE 0") == ""
    assert client.command("CREATE TABLE IF NOT EXISTS default.empty (x UInt8) ENGINE = Memory").written_rows == 0  # type: ignore[union-attr]
    # Parameters too long for the URL come as a multipart form.
    many = list(range(5000))
    assert client.query("SELECT length({ids:Array(UInt32)})", {"ids": many}).result_rows == [(5000,)]


def test_responses_are_compressed_in_an_encoding_the_client_accepts(stand_in: FakeClickHouse) -> None:
    # As on ClickHouse 24 and later, enable_http_compression is on unless the request turns it off.
    url = f"http://127.0.0.1:{stand_in.port}/"
    query = {"query": "SELECT number FROM numbers(1000) FORMAT TabSeparated"}
    numbers = "".join(f"{n}\n" for n in range(1000))
    for accepted, encoding in (("gzip", "gzip"), ("lz4, gzip", "lz4"), ("br, zstd", "zstd")):
        response = httpx.get(url, params=query, headers={"Accept-Encoding": accepted})
        assert response.headers["content-encoding"] == encoding and response.headers["x-clickhouse-format"] == "TabSeparated"
        if encoding == "gzip":
            assert response.text == numbers  # httpx decodes gzip itself
    plain = httpx.get(url, params={**query, "enable_http_compression": "0"}, headers={"Accept-Encoding": "gzip"})
    assert "content-encoding" not in plain.headers and plain.text == numbers


def test_errors_carry_the_engine_code(stand_in: FakeClickHouse) -> None:
    client = client_of(stand_in)
    with pytest.raises(DatabaseError) as unknown_table:
        client.query("SELECT * FROM direct.absent")
    assert unknown_table.value.code == 60
    with pytest.raises(DatabaseError) as unknown_setting:
        client.command("SELECT 1", settings={"no_such_setting": 1})
    assert unknown_setting.value.code == 115
    refused = httpx.post(f"http://127.0.0.1:{stand_in.port}/", params={"query": "SELECT 1", "decompress": "1"})
    assert refused.status_code == 500 and refused.headers["x-clickhouse-exception-code"] == "48"


def test_concurrent_requests_each_get_their_own_answer(stand_in: FakeClickHouse) -> None:
    def round_trip(n: int) -> bool:
        client = client_of(stand_in)
        return all(client.command("SELECT {n:UInt32} * 2", {"n": n + k}) == 2 * (n + k) for k in range(20))

    with ThreadPoolExecutor(8) as pool:
        assert all(pool.map(round_trip, range(0, 800, 100)))


# --- two storecast instances on one store ----------------------------------------------

STEP = 7_500  # ms: 8 records a minute, 480 an hour
SPAN = 3 * HOUR
GENSET = "genset"


def genset_records(id: int) -> list[JsonObject]:
    """Records whose averages are exact in binary: multiples of 1/4, and q absent for whole minutes."""
    records = []
    for index in range(SPAN // STEP):
        timestamp = T0 + index * STEP
        q = None if (timestamp // MINUTE) % 3 == 0 else (index % 17 - 8) / 4
        records.append({"timestamp": timestamp, "id": id, "p": (index * 37 % 4001 - 2000) / 4, "q": q, "state": index % 4})
    return records


def averages(records: list[JsonObject], period: int) -> list[JsonObject]:
    buckets: defaultdict[int, list[JsonObject]] = defaultdict(list)
    for record in records:
        buckets[record["timestamp"] // period * period].append(record)
    results = []
    for bucket, members in sorted(buckets.items()):
        result: JsonObject = {"timestamp": bucket, "id": members[0]["id"]}
        for name in ("p", "q", "state"):
            values = [m[name] for m in members if m[name] is not None]
            result[name] = fmean(values) if values else None
        results.append(result)
    return results


@pytest.fixture(scope="module")
def two_instances(
    stand_in: FakeClickHouse, tmp_path_factory: pytest.TempPathFactory, test_pki: Pki
) -> Iterator[tuple[Storecast, Storecast]]:
    instances: list[Storecast] = []
    try:
        for name in ("a", "b"):
            directory: Path = tmp_path_factory.mktemp(f"storecast-{name}")
            env = {"STORECAST_STORE_URL": stand_in.url, "STORECAST_LOG": "0", "STORECAST_DEV_DIR": str(directory / "dev")}
            instances.append(start_storecast(directory, test_pki, env))
        yield instances[0], instances[1]
    finally:
        for instance in instances:
            stop_storecast(instance)
    for instance in instances:
        assert instance.process.returncode == 0, instance.log.read_text()


def test_production_written_through_one_instance_reads_the_same_through_the_other(
    two_instances: tuple[Storecast, Storecast], stand_in: FakeClickHouse
) -> None:
    a, b = two_instances
    site = 4_100_000_001
    path = f"/v1/{site}/production/{GENSET}"
    sent = {id: genset_records(id) for id in (1, 2)}
    with a.client() as writer, b.client() as reader:
        for records in sent.values():
            for start in range(0, len(records), MAX_RECORDS):
                ok(put(writer, path, records[start : start + MAX_RECORDS]), 201)
        for id, records in sent.items():
            # Raw, past the record limit: partial responses.
            assert reader.get(f"{path}/{id}", params={"from": T0, "to": T0 + SPAN}).status_code == 206
            assert read_all(reader, f"{path}/{id}", T0, T0 + SPAN) == records
            minutes: Query = {"from": T0, "to": T0 + SPAN, "agg": "avg", "period": "60s"}
            assert ok(reader.get(f"{path}/{id}", params=minutes))["results"] == averages(records, MINUTE)

        # Once the rollup upkeep has recomputed the cells this site's PUTs marked, hourly
        # averages come from the rollups.
        store = client_of(stand_in)
        pending = f"SELECT count() FROM storecast.{PENDING_TABLE.name} WHERE site_id = {{site:UInt32}}"
        deadline = time.monotonic() + 60
        while store.command(pending, {"site": site}) != 0:
            assert time.monotonic() < deadline, "the rollup upkeep left spans pending"
            time.sleep(0.5)
        hours: Query = {"from": T0, "to": T0 + SPAN, "agg": "avg", "period": "1h"}
        for id, records in sent.items():
            assert ok(reader.get(f"{path}/{id}", params=hours))["results"] == averages(records, HOUR)
            assert ok(writer.get(f"{path}/{id}", params=hours))["results"] == averages(records, HOUR)


def test_vectors_written_through_one_instance_read_the_same_through_the_other(
    two_instances: tuple[Storecast, Storecast],
) -> None:
    a, b = two_instances
    site = 4_100_000_002
    forecast: JsonObject = {
        "creation_timestamp": T0,
        "id": 1,
        "values": [{"timestamp": T0 + k * 15 * MINUTE, "p": k * 0.75, "quality": k % 3} for k in range(96)],
    }
    labels = ["on-peak", 'say "hi"\t\n\\', "é" * 8, ""]
    tariff = {
        "id": 3,
        "values": [{"timestamp": T0 + k * HOUR, "label": label, "value": k + 0.5} for k, label in enumerate(labels)],
    }
    with a.client() as writer, b.client() as reader:
        ok(put(writer, f"/v1/{site}/forecast/solar", [forecast]), 201)
        ok(put(writer, f"/v1/{site}/tariff", [tariff]), 201)
        assert ok(reader.get(f"/v1/{site}/forecast/solar/1"))["results"] == [forecast]
        assert ok(reader.get(f"/v1/{site}/tariff/3"))["results"] == [tariff]
        # And the other way round: b writes a newer vintage, a reads it.
        newer = {**forecast, "creation_timestamp": T0 + 1, "values": forecast["values"][:2]}
        ok(put(reader, f"/v1/{site}/forecast/solar", [newer]), 201)
        assert ok(writer.get(f"/v1/{site}/forecast/solar/1"))["results"] == [newer]


def test_each_instance_keeps_serving_reads_of_the_other(two_instances: tuple[Storecast, Storecast]) -> None:
    """Concurrent PUTs through both instances, each record read back through the other."""
    a, b = two_instances
    site = 4_100_000_003

    def write_then_read(turn: int) -> bool:
        writer, reader = (a, b) if turn % 2 else (b, a)
        timestamp = T0 + turn * 1000
        record = {"timestamp": timestamp, "id": 7, "p": turn / 4, "q": None, "state": turn}
        with writer.client() as w, reader.client() as r:
            ok(put(w, f"/v1/{site}/production/{GENSET}", [record]), 201)
            read = ok(r.get(f"/v1/{site}/production/{GENSET}/7", params={"from": timestamp, "to": timestamp + 1}))
            return bool(read["results"] == [record])

    with ThreadPoolExecutor(4) as pool:
        assert all(pool.map(write_then_read, range(40)))
    with a.client() as client:
        assert len(read_all(client, f"/v1/{site}/production/{GENSET}/7", T0, T0 + 40_000)) == 40
