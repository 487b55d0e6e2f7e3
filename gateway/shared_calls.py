"""Small requests to a service, sent together while a call is under way.

Each gRPC call costs both processes more CPU than a 1-record PUT's or a
small read's own work (docs/architecture/recent-writes.md). So, as the
write-ahead log's group commit shares one sync among the PUTs that arrive
during the previous one, the gateway shares one call: a small request that
finds no call under way goes at once, alone; those that arrive while one is
under way wait for it and then go together, in one call of the service's
"many" method. Each is still answered on its own, with the code it would get
alone. Large requests go in a call of their own, so a bulk PUT never holds
up a small one, and so does a read the service cannot answer from memory at
once: the shared call never waits for the store.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

from google.protobuf.message import Message
from prometheus_client import Histogram

from storecast.status import ApiFailure, ApiStatus

log = logging.getLogger("storecast.gateway")

# Requests up to this size share calls: a 1-record PUT is about 300 bytes, a 5,000-record one about 1.5 MB.
SHARED_CALL_MAX_BYTES = 64 * 1024

REQUESTS_PER_CALL = Histogram(
    "storecast_http_requests_per_backend_call",
    "Small requests sent to a service in one call (gateway/shared_calls.py), by the service's method.",
    ["method"],
    buckets=(1, 2, 4, 8, 16, 32, 64),
)

Request = TypeVar("Request", bound=Message)
Reply = TypeVar("Reply", bound=Message)
# `together` answers each request with its reply, its refusal, or None: it goes alone after all
# (a read the service cannot answer at once, which must not hold up the shared call).
Alone = Callable[[Request, str], Awaitable[Reply]]
Together = Callable[[list[Request], list[str]], Awaitable[Sequence["Reply | ApiFailure | None"]]]


class SharedCalls(Generic[Request, Reply]):
    """The calls of one method from one gateway process: `alone` makes a call of one request,
    `together` one of several (both raise ApiFailure when the call as a whole fails). `size_of` is
    a request's size as the caller's method knows it (a PUT's body length), at no cost: upb
    computes ByteSize() by serializing the message, about 1 ms for a 1 MB PUT."""

    def __init__(
        self, method: str, alone: Alone[Request, Reply], together: Together[Request, Reply], size_of: Callable[[Request], int]
    ) -> None:
        self._alone = alone
        self._together = together
        self._size_of = size_of
        self._sizes = REQUESTS_PER_CALL.labels(method)
        self._waiting: list[tuple[Request, str, asyncio.Future[Reply]]] = []
        self._under_way = False

    async def call(self, request: Request, request_id: str) -> Reply:
        if self._size_of(request) > SHARED_CALL_MAX_BYTES:
            return await self._alone(request, request_id)
        answered: asyncio.Future[Reply] = asyncio.get_running_loop().create_future()
        if self._under_way:
            self._waiting.append((request, request_id, answered))
            return await answered
        # None under way: this request's own call, at once; what arrives meanwhile goes next, together.
        self._under_way = True
        try:
            await self._send_batch([(request, request_id, answered)])
        finally:
            if self._waiting:
                asyncio.get_running_loop().create_task(self._send_waiting())
            else:
                self._under_way = False
        return await answered

    async def _send_waiting(self) -> None:
        """One call at a time, each with every request that waits, until none does."""
        try:
            while self._waiting:
                batch, self._waiting = self._waiting, []
                await self._send_batch(batch)
        finally:
            self._under_way = False

    async def _send_batch(self, batch: list[tuple[Request, str, asyncio.Future[Reply]]]) -> None:
        self._sizes.observe(len(batch))
        try:
            await self._send(batch)
        except Exception:
            log.exception("request_ids=%s shared call failed", ",".join(request_id for _, request_id, _ in batch))
            for _, _, answered in batch:
                _answer(answered, ApiFailure(ApiStatus.SERVER_ERROR))

    async def _send(self, batch: list[tuple[Request, str, asyncio.Future[Reply]]]) -> None:
        """Even a lone request goes by the shared method: a read the service cannot answer at once then
        goes alone, and the next shared call need not wait for the store to answer it."""
        try:
            outcomes = await self._together([request for request, _, _ in batch], [request_id for _, request_id, _ in batch])
        except ApiFailure as failure:  # the call as a whole: the store down, the service busy
            for _, _, answered in batch:
                _answer(answered, failure)
            return
        for (request, request_id, answered), outcome in zip(batch, outcomes, strict=True):
            if outcome is None:
                asyncio.get_running_loop().create_task(self._send_alone(request, request_id, answered))
            else:
                _answer(answered, outcome)

    async def _send_alone(self, request: Request, request_id: str, answered: asyncio.Future[Reply]) -> None:
        try:
            outcome: Reply | ApiFailure = await self._alone(request, request_id)
        except ApiFailure as failure:
            outcome = failure
        except Exception:
            log.exception("request_id=%s call failed", request_id)
            outcome = ApiFailure(ApiStatus.SERVER_ERROR)
        _answer(answered, outcome)


def _answer(answered: asyncio.Future[Reply], outcome: Reply | ApiFailure) -> None:
    if answered.done():  # its client went away
        return
    if isinstance(outcome, ApiFailure):
        answered.set_exception(outcome)
    else:
        answered.set_result(outcome)
