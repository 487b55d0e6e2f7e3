"""The gateway's gRPC clients, and the way back from a gRPC status to an API error."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, AsyncIterator
from typing import TypeVar

import grpc
from google.protobuf.message import Message
from google.rpc import status_pb2
from grpc_status import rpc_status

from gateway.config import GatewaySettings
from gateway.shared_calls import SharedCalls
from storecast.status import ApiFailure, ApiStatus, from_api_error, from_rpc_status
from storecast.tracing import grpc_client_call
from storecast.v1 import ingest_pb2, ingest_pb2_grpc, inventory_pb2_grpc, query_pb2, query_pb2_grpc, records_pb2, vector_pb2_grpc
from storecast.v1 import status_pb2 as api_status_pb2

# A PutProductionStream piece: what the gateway holds of a large PUT body at a time.
_PUT_PIECE_BYTES = 1024 * 1024

log = logging.getLogger("storecast.gateway")

Request = TypeVar("Request", bound=Message)
Reply = TypeVar("Reply", bound=Message)

_CHANNEL_OPTIONS = [
    ("grpc.max_receive_message_length", -1),
    ("grpc.max_send_message_length", -1),
    # A target that resolves to several pods (a headless Service) gets its calls
    # spread over all of them, not pinned to the first.
    ("grpc.lb_policy_name", "round_robin"),
]


class Backends:
    """One channel per distinct target; in the monolithic mode all stubs share one."""

    def __init__(self, settings: GatewaySettings) -> None:
        self._timeout = settings.grpc_timeout_s
        self._channels: dict[str, grpc.aio.Channel] = {}
        self._credentials = settings.grpc_client_tls.channel_credentials() if settings.grpc_client_tls else None
        self.ingest = ingest_pb2_grpc.IngestStub(self._channel(settings.ingest_target))
        self.query = query_pb2_grpc.QueryStub(self._channel(settings.query_target))
        # The query target serves the inventory too (services/server.py).
        self.inventory = inventory_pb2_grpc.InventoryStub(self._channel(settings.query_target))
        self.vector = vector_pb2_grpc.VectorStub(self._channel(settings.vector_target))
        # Small production PUTs and reads that arrive together share a call (gateway/shared_calls.py).
        self.production_puts = SharedCalls("PutProduction", self._put_production, self._put_productions, _body_length)
        self.production_reads = SharedCalls(
            "GetProduction", self._get_production, self._get_productions_at_once, query_pb2.GetProductionRequest.ByteSize
        )

    def channel(self, target: str) -> grpc.aio.Channel:
        """The channel calls to `target` take (the readiness probe's Checks too: gateway/health.py)."""
        return self._channel(target)

    def _channel(self, target: str) -> grpc.aio.Channel:
        if target not in self._channels:
            if self._credentials is None:
                self._channels[target] = grpc.aio.insecure_channel(target, options=_CHANNEL_OPTIONS)
            else:
                self._channels[target] = grpc.aio.secure_channel(target, self._credentials, options=_CHANNEL_OPTIONS)
        return self._channels[target]

    async def call(self, method: grpc.aio.UnaryUnaryMultiCallable[Request, Reply], request: Request, request_id: str) -> Reply:
        """Call a stub method; a refusal comes back as the service's ApiFailure."""
        try:
            # The request id, and with tracing on the client span's traceparent (storecast/tracing.py).
            with grpc_client_call(method, request_id) as metadata:
                return await method(request, timeout=self._timeout, metadata=metadata)
        except grpc.aio.AioRpcError as error:
            raise _failure_of(error, request_id) from None

    async def stream(
        self, method: grpc.aio.UnaryStreamMultiCallable[Request, Reply], request: Request, request_id: str
    ) -> AsyncGenerator[Reply]:
        """A stub's server stream, reply by reply; a refusal comes as the service's ApiFailure.
        Closing the iterator early (its client went away) cancels the call, and so the service's work.

        The client span (with tracing on) covers the call's start: a span kept open across the
        iterator's pauses would be the current one in whatever its consumer does meanwhile.
        """
        with grpc_client_call(method, request_id) as metadata:
            call = method(request, timeout=self._timeout, metadata=metadata)
        try:
            async for reply in call:
                yield reply
        except grpc.aio.AioRpcError as error:
            raise _failure_of(error, request_id) from None
        finally:
            call.cancel()

    async def put_production_stream(
        self, first: ingest_pb2.PutProductionPiece, body: AsyncIterator[bytes], request_id: str
    ) -> records_pb2.PutReply:
        """PutProductionStream of `body`, sent on in pieces of about _PUT_PIECE_BYTES as it arrives,
        the first naming what `first` names. A body that fails on the way (its 413 or 1301, its
        client gone) cancels the call, so that nothing of it is stored, and is what this raises."""
        failed: list[Exception] = []

        async def pieces() -> AsyncIterator[ingest_pb2.PutProductionPiece]:
            piece, gathered = first, bytearray()
            try:
                async for part in body:
                    gathered += part
                    if len(gathered) >= _PUT_PIECE_BYTES:
                        piece.v1_json = bytes(gathered)
                        yield piece
                        piece, gathered = ingest_pb2.PutProductionPiece(), bytearray()
            except Exception as error:
                failed.append(error)
                raise
            piece.v1_json = bytes(gathered)
            yield piece

        method = self.ingest.PutProductionStream
        try:
            with grpc_client_call(method, request_id) as metadata:
                return await method(pieces(), timeout=self._timeout, metadata=metadata)
        except (grpc.aio.AioRpcError, asyncio.CancelledError) as error:
            if failed:  # grpcio cancelled the call when the pieces failed
                raise failed[0] from None
            if isinstance(error, asyncio.CancelledError):
                raise
            raise _failure_of(error, request_id) from None

    async def _put_production(self, request: ingest_pb2.PutProductionRequest, request_id: str) -> records_pb2.PutReply:
        return await self.call(self.ingest.PutProduction, request, request_id)

    async def _put_productions(
        self, requests: list[ingest_pb2.PutProductionRequest], request_ids: list[str]
    ) -> list[records_pb2.PutReply | ApiFailure | None]:
        many = ingest_pb2.PutProductionManyRequest(puts=requests, request_ids=request_ids)
        reply = await self.call(self.ingest.PutProductionMany, many, ",".join(request_ids))
        return [outcome.stored if outcome.HasField("stored") else _failure(outcome.error) for outcome in reply.outcomes]

    async def _get_production(self, request: query_pb2.GetProductionRequest, request_id: str) -> records_pb2.Records:
        return await self.call(self.query.GetProduction, request, request_id)

    async def _get_productions_at_once(
        self, requests: list[query_pb2.GetProductionRequest], request_ids: list[str]
    ) -> list[records_pb2.Records | ApiFailure | None]:
        many = query_pb2.GetProductionManyRequest(reads=requests, request_ids=request_ids)
        reply = await self.call(self.query.GetProductionAtOnce, many, ",".join(request_ids))
        outcomes: list[records_pb2.Records | ApiFailure | None] = []
        for outcome in reply.outcomes:
            kind = outcome.WhichOneof("outcome")
            outcomes.append(outcome.records if kind == "records" else _failure(outcome.error) if kind == "error" else None)
        return outcomes

    async def close(self) -> None:
        for channel in self._channels.values():
            await channel.close()


def _body_length(request: ingest_pb2.PutProductionRequest) -> int:
    return len(request.v1_json)


def _failure_of(error: grpc.aio.AioRpcError, request_id: str) -> ApiFailure:
    """The ApiFailure a service's refusal carries, or 1500 (logged) for a call that failed otherwise."""
    status: status_pb2.Status | None = rpc_status.from_call(error)
    failure = from_rpc_status(status)
    if failure is None:
        log.error("request_id=%s backend call failed: %s %s", request_id, error.code().name, error.details())
        failure = ApiFailure(ApiStatus.SERVER_ERROR)
    return failure


def _failure(error: api_status_pb2.ApiError) -> ApiFailure:
    return from_api_error(error) or ApiFailure(ApiStatus.SERVER_ERROR)
