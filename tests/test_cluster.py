"""ClickHouse cluster mode: the cluster schema comes from the single-node one, and the
services work unchanged through Distributed tables of the same names."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from services.lib.store.cluster import CLUSTER_SETTINGS, SHARDING_KEY
from services.lib.store.migrate import schema_statements
from services.lib.store.schema import all_tables
from tests.conftest import Pki, free_port, ok, put, start_storecast, stop_storecast
from tests.helpers import T0, JsonObject

CLUSTER = "storecast"
_ON_CLUSTER = f" ON CLUSTER '{CLUSTER}'"
_REPLICATED = re.compile(r"ENGINE = Replicated(\w*MergeTree)\('/clickhouse/tables/\{shard\}/[^']*', '\{replica\}'\)")


def created_tables(statements: list[str]) -> dict[str, str]:
    """Table name to its CREATE statement."""
    tables = {}
    for statement in statements:
        if match := re.match(r"CREATE TABLE IF NOT EXISTS storecast\.(\w+) ", statement):
            tables[match[1]] = statement
    return tables


def test_every_table_has_a_replicated_local_table_and_a_distributed_one_of_its_name() -> None:
    for table in all_tables():
        single = table.ddl("storecast")
        cluster = created_tables(table.ddl("storecast", CLUSTER))
        assert set(cluster) == {table.name, f"{table.name}_local"}
        local, distributed = cluster[f"{table.name}_local"], cluster[table.name]
        # The local table is the single-node table, renamed, on the cluster, replicated.
        expected_local = _REPLICATED.sub(r"ENGINE = \1", local).replace(f"{table.name}_local{_ON_CLUSTER}", table.name)
        assert expected_local == single[0]
        assert f"ENGINE = Distributed('{CLUSTER}', 'storecast', '{table.name}_local', {SHARDING_KEY})" in distributed
        assert distributed.split(" ENGINE = ")[0] == single[0].split(" ENGINE = ")[0].replace(
            table.name, f"{table.name}{_ON_CLUSTER}", 1
        )
        # Each column a newer catalog adds reaches both tables, on every host.
        added = [s for s in table.ddl("storecast", CLUSTER) if " ADD COLUMN " in s]
        assert len(added) == 2 * len([s for s in single if " ADD COLUMN " in s])
        # A setting goes to the tables that store the rows.
        settings = [s for s in table.ddl("storecast", CLUSTER) if " MODIFY SETTING " in s]
        assert all(s.startswith(f"ALTER TABLE storecast.{table.name}_local{_ON_CLUSTER}") for s in settings)
        assert len(settings) == len([s for s in single if " MODIFY SETTING " in s])
        assert all(_ON_CLUSTER in statement for statement in table.ddl("storecast", CLUSTER))


def test_the_migration_covers_the_catalog_in_both_modes() -> None:
    names = {table.name for table in all_tables()}
    single = schema_statements("storecast", None)
    cluster = schema_statements("storecast", CLUSTER)
    assert set(created_tables(single)) == names
    assert set(created_tables(cluster)) == names | {f"{name}_local" for name in names}
    assert cluster[0] == f"CREATE DATABASE IF NOT EXISTS storecast{_ON_CLUSTER}"


@pytest.mark.parametrize("name", ["main; DROP DATABASE x", "a'b", ""])
def test_cluster_names_are_checked_before_they_reach_sql(name: str) -> None:
    with pytest.raises(ValueError):
        schema_statements("storecast", name)


# The embedded engine in a subprocess (one engine per process): it parses the
# cluster DDL as the server would, and hosts a one-shard cluster on itself.
_ENGINE_SCRIPT = """
import json, sys
import clickhouse_connect
job = json.load(sys.stdin)
client = clickhouse_connect.get_client(dsn="chdb://" + job["path"], chdb_options={"config-file": job["config"]})
formatted = [client.query("SELECT formatQuery({s:String})", parameters={"s": s}).result_rows[0][0] for s in job["parse"]]
for statement in job["apply"]:
    client.command(statement)
counts = {t: client.query(f"SELECT count() FROM storecast.{t}").result_rows[0][0] for t in job["count"]}
known = {name: value for name, value in client.query("SELECT name, 1 FROM system.settings").result_rows}
unknown = [s for s in job["settings"] if s not in known]
json.dump({"formatted": formatted, "counts": counts, "unknown_settings": unknown}, sys.stdout)
"""


def run_engine(
    path: Path, config: Path, *, parse: list[str] | None = None, apply: list[str] | None = None, count: list[str] | None = None
) -> JsonObject:
    job = {
        "path": str(path),
        "config": str(config),
        "parse": parse or [],
        "apply": apply or [],
        "count": count or [],
        "settings": list(CLUSTER_SETTINGS),
    }
    done = subprocess.run(
        [sys.executable, "-c", _ENGINE_SCRIPT], input=json.dumps(job), capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    report: JsonObject = json.loads(done.stdout)
    return report


@pytest.fixture
def one_shard_cluster(tmp_path: Path) -> Path:
    """A config naming a cluster whose one shard is this very engine (a local shard
    is served in-process, so Distributed tables work without a network)."""
    port = free_port()
    config = tmp_path / "cluster.xml"
    config.write_text(
        f"<clickhouse><tcp_port>{port}</tcp_port><remote_servers><{CLUSTER}><shard>"
        f"<internal_replication>true</internal_replication><replica><host>localhost</host><port>{port}</port></replica>"
        f"</shard></{CLUSTER}></remote_servers></clickhouse>"
    )
    return config


def on_one_host(statement: str) -> str:
    """The embedded engine has neither the distributed DDL queue (ON CLUSTER) nor
    Keeper (replication); everything else of the statement is kept."""
    return _REPLICATED.sub(r"ENGINE = \1", statement.replace(_ON_CLUSTER, ""))


def test_services_read_and_write_through_distributed_tables(tmp_path: Path, test_pki: Pki, one_shard_cluster: Path) -> None:
    store = tmp_path / "store"
    statements = schema_statements("storecast", CLUSTER)
    engine = run_engine(store, one_shard_cluster, parse=statements, apply=[on_one_host(s) for s in statements])
    # ClickHouse itself parses every cluster statement, ON CLUSTER and replication included.
    assert len(engine["formatted"]) == len(statements)
    assert engine["unknown_settings"] == []
    storecast = start_storecast(
        tmp_path,
        test_pki,
        {"STORECAST_STORE_URL": f"chdb://{store}?config-file={one_shard_cluster}", "STORECAST_CLICKHOUSE_CLUSTER": CLUSTER},
    )
    try:
        with storecast.client("admin") as admin:
            path = "/v1/42/production/meter"
            ok(put(admin, path, [{"timestamp": T0, "id": 1, "p": 1.0}, {"timestamp": T0 + 1000, "id": 1, "p": 2.0}]), 201)
            ok(put(admin, path, [{"timestamp": T0, "id": 1, "p": 3.0}]), 201)
            results = ok(admin.get(f"{path}/1"))["results"]
            # FINAL through the Distributed table: the later PUT replaced the record.
            assert [(r["timestamp"], r["p"]) for r in results] == [(T0, 3.0), (T0 + 1000, 2.0)]
            averaged = ok(admin.get(f"{path}/1", params={"from": T0, "to": T0 + 2000, "agg": "avg", "period": "1h"}))
            assert averaged["results"][0]["p"] == 2.5
    finally:
        stop_storecast(storecast)
    assert storecast.process.returncode == 0, storecast.log.read_text()
    # The rows are in the local table behind the Distributed one.
    counts = run_engine(store, one_shard_cluster, count=["production_meter_local FINAL"])["counts"]
    assert counts == {"production_meter_local FINAL": 2}


def test_migrate_applies_the_schema_and_exits(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "storecast", "migrate", "--store-url", f"chdb://{tmp_path / 'store'}"]
    for _ in range(2):  # idempotent
        done = subprocess.run(command, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
    assert f"schema of {len(all_tables())} tables applied" in done.stderr
    script = (
        "import clickhouse_connect, json, sys; c = clickhouse_connect.get_client(dsn=sys.argv[1]);"
        " print(json.dumps(c.query(\"SELECT name FROM system.tables WHERE database = 'storecast'\").result_columns[0]))"
    )
    listed = subprocess.run(
        [sys.executable, "-c", script, f"chdb://{tmp_path / 'store'}"], capture_output=True, text=True, timeout=120
    )
    assert set(json.loads(listed.stdout)) == {table.name for table in all_tables()}
