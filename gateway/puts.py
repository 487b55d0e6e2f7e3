"""Small production PUTs to the ingest service, sent together while a call is under way.

Each gRPC call costs both processes more CPU than a 1-record PUT's own work
(docs/architecture/recent-writes.md). So, as the write-ahead log's group
commit shares one sync among the PUTs that arrive during the previous one,
the gateway shares one call: a small PUT that finds no call under way goes at
once, alone; those that arrive while one is under way wait for it and then go
together in one Ingest.PutProductionMany. Each is still validated, logged and
answered on its own, with the code it would get alone. Large bodies go in a
call of their own, so a bulk PUT never holds up a small one.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from prometheus_client import Histogram

from storecast.status import ApiFailure, ApiStatus, from_api_error
from storecast.v1 import ingest_pb2, ingest_pb2_grpc, records_pb2

# Bodies up to this size share calls: a 1-record PUT is about 300 bytes, a 5,000-record one about 1.5 MB.
SHARED_CALL_MAX_BYTES = 64 * 1024

PUTS_PER_CALL = Histogram(
    "storecast_http_production_puts_per_call",
    "Small production PUTs sent to the ingest service in one call (gateway/puts.py).",
    buckets=(1, 2, 4, 8, 16, 32, 64),
)

log = logging.getLogger("storecast.gateway")
_Waiting = tuple[ingest_pb2.PutProductionRequest, str, "asyncio.Future[records_pb2.PutReply]"]


class ProductionPuts:
    """The production PUTs of one gateway process; `call` is Backends.call (errors, request ids, tracing)."""

    def __init__(self, ingest: ingest_pb2_grpc.IngestAsyncStub, call: Callable[..., Awaitable[object]]) -> None:
        self._ingest = ingest
        self._call = call
        self._waiting: list[_Waiting] = []
        self._under_way = False

    async def put(self, request: ingest_pb2.PutProductionRequest, request_id: str) -> records_pb2.PutReply:
        if request.ByteSize() > SHARED_CALL_MAX_BYTES:
            reply = await self._call(self._ingest.PutProduction, request, request_id)
            assert isinstance(reply, records_pb2.PutReply)
            return reply
        answered: asyncio.Future[records_pb2.PutReply] = asyncio.get_running_loop().create_future()
        self._waiting.append((request, request_id, answered))
        if not self._under_way:
            self._under_way = True
            asyncio.get_running_loop().create_task(self._send_waiting())
        return await answered

    async def _send_waiting(self) -> None:
        """One call at a time, each with every PUT that waits, until none does."""
        try:
            while self._waiting:
                batch, self._waiting = self._waiting, []
                PUTS_PER_CALL.observe(len(batch))
                try:
                    await self._send(batch)
                except Exception:
                    log.exception("request_ids=%s production PUTs failed", ",".join(request_id for _, request_id, _ in batch))
                    for _, _, answered in batch:
                        _answer(answered, ApiFailure(ApiStatus.SERVER_ERROR))
        finally:
            self._under_way = False

    async def _send(self, batch: list[_Waiting]) -> None:
        if len(batch) == 1:
            request, request_id, answered = batch[0]
            try:
                reply = await self._call(self._ingest.PutProduction, request, request_id)
            except ApiFailure as failure:
                _answer(answered, failure)
                return
            assert isinstance(reply, records_pb2.PutReply)
            _answer(answered, reply)
            return
        many = ingest_pb2.PutProductionManyRequest(
            puts=[request for request, _, _ in batch], request_ids=[request_id for _, request_id, _ in batch]
        )
        try:
            replies = await self._call(self._ingest.PutProductionMany, many, ",".join(many.request_ids))
        except ApiFailure as failure:  # the call as a whole: the store down, the service busy
            for _, _, answered in batch:
                _answer(answered, failure)
            return
        assert isinstance(replies, ingest_pb2.PutProductionManyReply)
        for (_, _, answered), outcome in zip(batch, replies.outcomes, strict=True):
            if outcome.HasField("stored"):
                _answer(answered, outcome.stored)
            else:
                _answer(answered, from_api_error(outcome.error) or ApiFailure(ApiStatus.SERVER_ERROR))


def _answer(answered: asyncio.Future[records_pb2.PutReply], outcome: records_pb2.PutReply | ApiFailure) -> None:
    if answered.done():  # its client went away
        return
    if isinstance(outcome, ApiFailure):
        answered.set_exception(outcome)
    else:
        answered.set_result(outcome)
