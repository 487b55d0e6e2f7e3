"""The gateway's production PUTs: alone when no call is under way, together while one is (gateway/puts.py)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from gateway.puts import SHARED_CALL_MAX_BYTES, ProductionPuts
from storecast.status import ApiFailure, ApiStatus, to_api_error
from storecast.v1 import catalog_pb2, ingest_pb2, records_pb2


class Ingest:
    """Stands for the ingest stub: records each call, answers after `release` is set."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.release = asyncio.Event()

    async def PutProduction(self, request: ingest_pb2.PutProductionRequest) -> records_pb2.PutReply:
        self.calls.append(("one", request))
        await self.release.wait()
        if b"refused" in request.v1_json:
            raise ApiFailure(ApiStatus.PAYLOAD_CONTENT_ERROR, "values[0].p: expected a number")
        return records_pb2.PutReply(stored=1)

    async def PutProductionMany(self, request: ingest_pb2.PutProductionManyRequest) -> ingest_pb2.PutProductionManyReply:
        self.calls.append(("many", request))
        await self.release.wait()
        outcomes = []
        for put in request.puts:
            if b"refused" in put.v1_json:
                failure = ApiFailure(ApiStatus.PAYLOAD_CONTENT_ERROR, "values[0].p: expected a number")
                outcomes.append(ingest_pb2.PutOutcome(error=to_api_error(failure)))
            else:
                outcomes.append(ingest_pb2.PutOutcome(stored=records_pb2.PutReply(stored=1)))
        return ingest_pb2.PutProductionManyReply(outcomes=outcomes)


async def call(method: Any, request: Any, request_id: str) -> Any:
    """As Backends.call, whose errors arrive as ApiFailure."""
    return await method(request)


def put_of(body: bytes) -> ingest_pb2.PutProductionRequest:
    return ingest_pb2.PutProductionRequest(site_id=1, equipment_type=catalog_pb2.RENEWABLE, v1_json=body)


def test_a_lone_put_goes_alone_and_those_arriving_meanwhile_go_together() -> None:
    async def scenario() -> None:
        ingest = Ingest()
        puts = ProductionPuts(ingest, call)  # type: ignore[arg-type]
        first = asyncio.create_task(puts.put(put_of(b"first"), "r0"))
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        assert [kind for kind, _ in ingest.calls] == ["one"]
        waiting = [asyncio.create_task(puts.put(put_of(body), f"r{n}")) for n, body in enumerate([b"a", b"refused", b"b"], 1)]
        await asyncio.sleep(0)
        assert len(ingest.calls) == 1  # they wait for the call under way
        ingest.release.set()
        assert (await first).stored == 1
        results = await asyncio.gather(*waiting, return_exceptions=True)
        assert [kind for kind, _ in ingest.calls] == ["one", "many"]
        many = ingest.calls[1][1]
        assert [p.v1_json for p in many.puts] == [b"a", b"refused", b"b"] and list(many.request_ids) == ["r1", "r2", "r3"]
        assert isinstance(results[0], records_pb2.PutReply) and isinstance(results[2], records_pb2.PutReply)
        assert isinstance(results[1], ApiFailure) and results[1].code == ApiStatus.PAYLOAD_CONTENT_ERROR
        assert "values[0].p" in results[1].message

    asyncio.run(scenario())


def test_a_large_body_goes_in_a_call_of_its_own_even_while_one_is_under_way() -> None:
    async def scenario() -> None:
        ingest = Ingest()
        puts = ProductionPuts(ingest, call)  # type: ignore[arg-type]
        small = asyncio.create_task(puts.put(put_of(b"small"), "r0"))
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        large = asyncio.create_task(puts.put(put_of(b"x" * (SHARED_CALL_MAX_BYTES + 1)), "r1"))
        await asyncio.sleep(0)
        assert [kind for kind, _ in ingest.calls] == ["one", "one"]
        ingest.release.set()
        assert (await small).stored == 1 and (await large).stored == 1

    asyncio.run(scenario())


@pytest.mark.parametrize("together", [False, True])
def test_a_failed_call_fails_each_put_it_carried(together: bool) -> None:
    class Down(Ingest):
        async def PutProduction(self, request: ingest_pb2.PutProductionRequest) -> records_pb2.PutReply:
            raise ApiFailure(ApiStatus.SERVER_ERROR, "the store is unavailable")

        async def PutProductionMany(self, request: ingest_pb2.PutProductionManyRequest) -> ingest_pb2.PutProductionManyReply:
            raise ApiFailure(ApiStatus.SERVER_ERROR, "the store is unavailable")

    async def scenario() -> list[BaseException | records_pb2.PutReply]:
        puts = ProductionPuts(Down(), call)  # type: ignore[arg-type]
        count = 3 if together else 1
        return await asyncio.gather(*(puts.put(put_of(b"x"), f"r{n}") for n in range(count)), return_exceptions=True)

    results = asyncio.run(scenario())
    assert all(isinstance(result, ApiFailure) and "unavailable" in result.message for result in results)
