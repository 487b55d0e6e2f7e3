"""Small reads of stored records from many clients at once share engine queries (services/query/gathered.py).

Clients released together each read records of their own (one record, a few,
overlapping ranges of one equipment, the same range twice, one past the cap,
an id never stored) through the gateway. Every answer must be what that read
gets alone, afterwards: same status, same body. And the store's queries must
have answered several reads each.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import Pki, Storecast, free_port, ok, put, start_storecast, stop_storecast
from tests.helpers import T0
from tests.test_metrics import scrape, value

SITE = 43
PATH = f"/v1/{SITE}/production/battery"
EQUIPMENTS = 6
RECORDS = 300  # per equipment, 1 s apart
CAP = 50


@pytest.fixture(scope="module")
def instance(tmp_path_factory: pytest.TempPathFactory, test_pki: Pki) -> Iterator[tuple[Storecast, int]]:
    metrics_port = free_port()
    # Each read asked again goes to the store, not to the answers kept of it (tests/test_kept_answers.py).
    env = {"STORECAST_MAX_RECORDS": str(CAP), "STORECAST_METRICS_PORT": str(metrics_port), "STORECAST_ANSWER_CACHE_BYTES": "0"}
    storecast = start_storecast(tmp_path_factory.mktemp("gathered"), test_pki, env)
    with storecast.client("admin") as admin:
        for equipment in range(1, EQUIPMENTS + 1):
            records = [
                {"timestamp": T0 + k * 1000, "id": equipment, "p": equipment * 1000 + k * 0.5, "soc": None if k % 5 else 50.0}
                for k in range(RECORDS)
            ]
            for first in range(0, RECORDS, CAP):
                ok(put(admin, PATH, records[first : first + CAP]), 201)
    yield storecast, metrics_port
    stop_storecast(storecast)


def reads() -> list[tuple[str, dict[str, int]]]:
    wanted: list[tuple[str, dict[str, int]]] = []
    for equipment in range(1, EQUIPMENTS + 1):
        path = f"{PATH}/{equipment}"
        wanted += [
            (path, {"from": T0 + 7_000 * equipment, "to": T0 + 7_000 * equipment + 1}),  # one record
            (path, {"from": T0 + 100_000, "to": T0 + 110_000}),  # ten
            (path, {"from": T0 + 105_000, "to": T0 + 120_500}),  # overlapping the ten
            (path, {"from": T0 + 105_000, "to": T0 + 120_500}),  # the same again
            (path, {"from": T0, "to": T0 + 200_000}),  # past the cap: 206
            (path, {"from": T0 - 10_000, "to": T0}),  # none, known id
        ]
    wanted.append((f"{PATH}/99", {"from": T0, "to": T0 + 1000}))  # never stored: 400/1107
    return wanted


def test_concurrent_reads_share_queries_and_answer_as_alone(instance: tuple[Storecast, int]) -> None:
    storecast, metrics_port = instance
    wanted = reads()
    before = scrape(metrics_port)
    got: dict[int, list[httpx.Response]] = {}
    barrier = threading.Barrier(len(wanted))

    def read(index: int, path: str, params: dict[str, int]) -> None:
        with storecast.client("admin") as client:
            client.get("/v1/catalog")  # the TLS handshake before the barrier
            barrier.wait()
            got[index] = [client.get(path, params=params) for _ in range(3)]

    threads = [threading.Thread(target=read, args=(index, *read_args)) for index, read_args in enumerate(wanted)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    after = scrape(metrics_port)

    with storecast.client("admin") as client:
        for index, (path, params) in enumerate(wanted):
            alone = client.get(path, params=params)
            for response in got[index]:
                assert (response.status_code, response.content) == (alone.status_code, alone.content), (path, params)
    statuses = {response.status_code for responses in got.values() for response in responses}
    assert statuses == {200, 206, 400}

    queries = value(after, "storecast_store_reads_per_query_count") - value(before, "storecast_store_reads_per_query_count")
    answered = value(after, "storecast_store_reads_per_query_sum") - value(before, "storecast_store_reads_per_query_sum")
    assert answered == 3 * len(wanted)  # the unknown id too: its read finds nothing, then the id is looked up
    assert queries < answered
