"""Small requests go alone when no call is under way, together while one is (gateway/shared_calls.py)."""

from __future__ import annotations

import asyncio

import pytest

from gateway.shared_calls import SHARED_CALL_MAX_BYTES, SharedCalls
from storecast.status import ApiFailure, ApiStatus
from storecast.v1 import catalog_pb2, ingest_pb2, records_pb2

Outcome = records_pb2.PutReply | ApiFailure | None


class Service:
    """Stands for a service's two methods: records each call, answers once `release` is set.
    A body holding "refused" is refused; one holding "later" is not answered at once."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, list[bytes], list[str]]] = []
        self.release = asyncio.Event()

    async def alone(self, request: ingest_pb2.PutProductionRequest, request_id: str) -> records_pb2.PutReply:
        self.calls.append(("alone", [request.v1_json], [request_id]))
        await self.release.wait()
        if b"refused" in request.v1_json:
            raise ApiFailure(ApiStatus.PAYLOAD_CONTENT_ERROR, "values[0].p: expected a number")
        return records_pb2.PutReply(stored=1)

    async def together(self, requests: list[ingest_pb2.PutProductionRequest], request_ids: list[str]) -> list[Outcome]:
        self.calls.append(("together", [request.v1_json for request in requests], request_ids))
        await self.release.wait()
        return [self._outcome(request.v1_json) for request in requests]

    @staticmethod
    def _outcome(body: bytes) -> Outcome:
        if b"refused" in body:
            return ApiFailure(ApiStatus.PAYLOAD_CONTENT_ERROR, "values[0].p: expected a number")
        return None if b"later" in body else records_pb2.PutReply(stored=1)


def request_of(body: bytes) -> ingest_pb2.PutProductionRequest:
    return ingest_pb2.PutProductionRequest(site_id=1, equipment_type=catalog_pb2.RENEWABLE, v1_json=body)


async def settle() -> None:
    for _ in range(3):
        await asyncio.sleep(0)


def test_a_lone_request_goes_at_once_and_those_arriving_meanwhile_go_together() -> None:
    async def scenario() -> None:
        service = Service()
        calls = SharedCalls("test", service.alone, service.together, ingest_pb2.PutProductionRequest.ByteSize)
        first = asyncio.create_task(calls.call(request_of(b"first"), "r0"))
        await settle()
        assert service.calls == [("together", [b"first"], ["r0"])]
        bodies = [b"a", b"refused", b"later", b"b"]
        waiting = [asyncio.create_task(calls.call(request_of(body), f"r{n}")) for n, body in enumerate(bodies, 1)]
        await settle()
        assert len(service.calls) == 1  # they wait for the call under way
        service.release.set()
        assert (await first).stored == 1
        results = await asyncio.gather(*waiting, return_exceptions=True)
        # The one not answered at once went alone after the shared call.
        assert service.calls[1:] == [("together", bodies, ["r1", "r2", "r3", "r4"]), ("alone", [b"later"], ["r3"])]
        assert [type(result) for result in results] == [
            records_pb2.PutReply,
            ApiFailure,
            records_pb2.PutReply,
            records_pb2.PutReply,
        ]
        refused = results[1]
        assert isinstance(refused, ApiFailure) and refused.code == ApiStatus.PAYLOAD_CONTENT_ERROR

    asyncio.run(scenario())


def test_a_large_request_goes_in_a_call_of_its_own_even_while_one_is_under_way() -> None:
    async def scenario() -> None:
        service = Service()
        calls = SharedCalls("test", service.alone, service.together, ingest_pb2.PutProductionRequest.ByteSize)
        small = asyncio.create_task(calls.call(request_of(b"small"), "r0"))
        await settle()
        large = asyncio.create_task(calls.call(request_of(b"x" * (SHARED_CALL_MAX_BYTES + 1)), "r1"))
        await settle()
        assert [kind for kind, _, _ in service.calls] == ["together", "alone"]
        service.release.set()
        assert (await small).stored == 1 and (await large).stored == 1

    asyncio.run(scenario())


@pytest.mark.parametrize("count", [1, 3])
def test_a_failed_call_fails_each_request_it_carried(count: int) -> None:
    async def down(requests: list[ingest_pb2.PutProductionRequest], request_ids: list[str]) -> list[Outcome]:
        raise ApiFailure(ApiStatus.SERVER_ERROR, "the store is unavailable")

    async def scenario() -> list[records_pb2.PutReply | BaseException]:
        calls = SharedCalls("test", Service().alone, down, ingest_pb2.PutProductionRequest.ByteSize)
        return await asyncio.gather(*(calls.call(request_of(b"x"), f"r{n}") for n in range(count)), return_exceptions=True)

    results = asyncio.run(scenario())
    assert len(results) == count
    assert all(isinstance(result, ApiFailure) and "unavailable" in result.message for result in results)
