"""Admission control of a service process: a budget of PUT bytes and of decoded rows in flight.

gRPC callers reach the services without the gateway, so the services hold
their own budgets, per process: `STORECAST_INFLIGHT_BODY_BYTES` of Put
requests (their serialized size, charged when the call starts and released
when it ends) and `STORECAST_INFLIGHT_RECORDS` decoded rows (production
records, forecast and commitment vectors, tariff periods; charged once the
body is decoded, held while the rows wait for their insert). A call beyond
either is refused at once with 1500 and gRPC RESOURCE_EXHAUSTED, and nothing
of it is stored; through the gateway that is HTTP 500 by the status table
(the gateway's own refusal, before it reads a body, is 503 with Retry-After).

The interceptor also refuses every storecast.v1 call while the store is down
(services/lib/rpc/readiness.py): 1500, gRPC UNAVAILABLE, without waiting on it.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Iterator
from contextlib import aclosing, contextmanager
from contextvars import ContextVar
from typing import Any, NamedTuple, cast

import grpc
from google.protobuf.message import Message

from services.lib.rpc.server import (
    Context,
    Deserializer,
    Handler,
    stream_unary_handler,
    unary_handler,
    unary_stream_handler,
    wraps_async_generator,
    wraps_coroutine,
)
from storecast.env import setting
from storecast.status import ApiFailure, ApiStatus

_API_PREFIX = "/storecast.v1."


class Budget:
    """A quantity shared by concurrent calls; a charge beyond it is refused, never waited for."""

    def __init__(self, limit: int, what: str) -> None:
        self.limit = limit
        self.what = what
        self.used = 0
        self._lock = threading.Lock()

    def try_charge(self, amount: int, held: int = 0) -> bool:
        """`held`: what the same request holds of it already (a stream's earlier pieces)."""
        with self._lock:
            # A lone request larger than the whole budget still passes when nothing else is in flight:
            # the body size limit, not this, is what refuses it.
            if self.used > held and self.used + amount > self.limit:
                return False
            self.used += amount
            return True

    def release(self, amount: int) -> None:
        with self._lock:
            self.used -= amount


def busy(what: str) -> ApiFailure:
    return ApiFailure(
        ApiStatus.SERVER_ERROR,
        f"the server is busy ({what} in flight at the limit); retry later",
        grpc_code=grpc.StatusCode.RESOURCE_EXHAUSTED,
    )


# The call's ticket: a context variable, as a coroutine call shares its thread (the event loop's) with others.
_ticket: ContextVar[_Ticket | None] = ContextVar("admission_ticket", default=None)


def charge_records(rows: int) -> None:
    """Charge a decoded request's rows to the records budget, for the rest of the call
    (a no-op outside an admitted Put call)."""
    ticket = _ticket.get()
    if ticket is None:
        return
    if not ticket.records.try_charge(rows):
        raise busy(f"{ticket.records.what}")
    ticket.rows += rows


class _Ticket:
    def __init__(self, records: Budget) -> None:
        self.records = records
        self.rows = 0
        self.bytes = 0


class AdmissionInterceptor(grpc.aio.ServerInterceptor):
    """Put calls within the budgets; every API call refused at once while the store is down.

    It runs inside ApiErrorInterceptor, which turns its ApiFailure into the gRPC status."""

    def __init__(
        self,
        body_bytes: Budget,
        records: Budget,
        check_ready: Callable[[], None] | None = None,
        without_store: frozenset[str] = frozenset(),
    ) -> None:
        self.body_bytes = body_bytes
        self.records = records
        self._check_ready = check_ready
        # Methods that need no store to answer (PUTs a write-ahead log acknowledges).
        self._without_store = without_store

    @classmethod
    def from_env(
        cls, check_ready: Callable[[], None] | None = None, without_store: frozenset[str] = frozenset()
    ) -> AdmissionInterceptor:
        return cls(
            Budget(int(setting("STORECAST_INFLIGHT_BODY_BYTES")), "request bytes"),
            Budget(int(setting("STORECAST_INFLIGHT_RECORDS")), "decoded records"),
            check_ready,
            without_store,
        )

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Handler | None]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Handler | None:
        handler = await continuation(handler_call_details)
        method: str = handler_call_details.method
        if handler is None or not method.startswith(_API_PREFIX):
            return handler
        is_put = method.rsplit("/", 1)[-1].startswith("Put")
        needs_store = method not in self._without_store
        sized = _sized(handler.request_deserializer)
        if handler.unary_unary is not None and wraps_coroutine(handler.unary_unary):
            coroutine = cast(Callable[[Message, Context], Awaitable[Any]], handler.unary_unary)

            async def admitted_coroutine(request: _Sized, context: Context) -> Any:
                with self._admission(request.size, is_put, needs_store):
                    return await coroutine(request.message, context)

            return unary_handler(admitted_coroutine, handler, sized)
        if handler.unary_unary is not None:
            unary = handler.unary_unary

            def admitted(request: _Sized, context: grpc.ServicerContext) -> Any:
                with self._admission(request.size, is_put, needs_store):
                    return unary(request.message, context)

            return unary_handler(admitted, handler, sized)
        if handler.stream_unary is not None and wraps_coroutine(handler.stream_unary):
            receiver = cast(Callable[[AsyncIterator[Message], Context], Awaitable[Any]], handler.stream_unary)

            async def admitted_receiver(requests: AsyncIterator[_Sized], context: Context) -> Any:
                with self._admission(None, is_put, needs_store) as ticket:
                    return await receiver(self._charged(requests, ticket), context)

            return stream_unary_handler(admitted_receiver, handler, sized)
        if handler.unary_stream is not None and wraps_async_generator(handler.unary_stream):
            generator = cast(Callable[[Message, Context], AsyncGenerator[Any]], handler.unary_stream)

            async def admitted_generator(request: Message, context: Context) -> AsyncIterator[Any]:
                with self._admission(None, False, needs_store):
                    async with aclosing(generator(request, context)) as replies:
                        async for reply in replies:
                            yield reply

            return unary_stream_handler(admitted_generator, handler)
        if handler.unary_stream is not None:
            stream = handler.unary_stream

            def admitted_stream(request: Message, context: grpc.ServicerContext) -> Iterator[Any]:
                with self._admission(None, False, needs_store):
                    yield from stream(request, context)

            return unary_stream_handler(admitted_stream, handler)
        return handler

    @contextmanager
    def _admission(self, request_bytes: int | None, is_put: bool, needs_store: bool) -> Iterator[_Ticket | None]:
        """The call's admission; a Put's ticket, charged its request's serialized size (a stream's
        pieces are charged as they come, `_charged`), released as the call ends."""
        if self._check_ready is not None and needs_store:
            self._check_ready()
        if not is_put:
            yield None
            return
        ticket = _Ticket(self.records)
        if request_bytes is not None:
            self._charge_bytes(ticket, request_bytes)
        token = _ticket.set(ticket)
        try:
            yield ticket
        finally:
            _ticket.reset(token)
            self.body_bytes.release(ticket.bytes)
            self.records.release(ticket.rows)

    def _charge_bytes(self, ticket: _Ticket, size: int) -> None:
        if not self.body_bytes.try_charge(size, ticket.bytes):
            raise busy(self.body_bytes.what)
        ticket.bytes += size

    async def _charged(self, requests: AsyncIterator[_Sized], ticket: _Ticket | None) -> AsyncIterator[Message]:
        async for request in requests:
            if ticket is not None:
                self._charge_bytes(ticket, request.size)
            yield request.message


class _Sized(NamedTuple):
    """A request as received: the message, and the size it came in."""

    message: Any
    size: int


def _sized(deserialize: Deserializer | None) -> Callable[[bytes], _Sized]:
    """The method's deserializer, the size of what it reads kept beside the message: upb computes
    ByteSize() of a parsed message by serializing it again, about 1 ms for a 1 MB body."""

    def sized(serialized: bytes) -> _Sized:
        return _Sized(serialized if deserialize is None else deserialize(serialized), len(serialized))

    return sized
