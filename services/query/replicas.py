"""The ingest replicas' recent writes, asked over gRPC by a query service of its own process.

Each ingest replica acknowledges PUTs from its write-ahead log and stores them
within a flush interval; a read must see them at once. So before it reads the
engine, the query service asks every replica (`Ingest.ReadRecent`) to store
what it acknowledged of the read's series and range. With one replica the same
call answers the read from that replica's hot tier when it provably can; with
several, none can prove that another replica wrote nothing
(docs/architecture/recent-writes.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import cast

import grpc
from grpc_status import rpc_status

from services.lib.reads.window import Window
from storecast.catalog import RecordType
from storecast.status import ApiFailure, ApiStatus, from_rpc_status
from storecast.v1 import ingest_pb2, ingest_pb2_grpc, query_pb2, records_pb2

# A replica that restarts is asked again within a second, not after gRPC's default backoff of up to two minutes.
_CHANNEL_OPTIONS = [("grpc.initial_reconnect_backoff_ms", 100), ("grpc.max_reconnect_backoff_ms", 1000)]


class IngestReplicas:
    def __init__(self, targets: Sequence[str], credentials: grpc.ChannelCredentials | None, timeout_s: float = 30) -> None:
        channels = [
            grpc.insecure_channel(target, options=_CHANNEL_OPTIONS)
            if credentials is None
            else grpc.secure_channel(target, credentials, options=_CHANNEL_OPTIONS)
            for target in targets
        ]
        self._stubs = [ingest_pb2_grpc.IngestStub(channel) for channel in channels]
        self._timeout_s = timeout_s
        self._pool = ThreadPoolExecutor(max_workers=len(self._stubs), thread_name_prefix="ingest-replicas")

    def answer_at_once(
        self, equipment: RecordType, request: query_pb2.GetProductionRequest, window: Window, horizon: int, limit: int
    ) -> records_pb2.Records | None:
        """Never: the replicas' answers are calls over the network, made from a thread."""
        return None

    def answer_or_sync(
        self, equipment: RecordType, request: query_pb2.GetProductionRequest, window: Window, horizon: int, limit: int
    ) -> records_pb2.Records | None:
        read = query_pb2.GetProductionRequest()
        read.CopyFrom(request)
        read.max_records = limit
        if len(self._stubs) == 1:
            reply = self._call(self._stubs[0], ingest_pb2.ReadRecentRequest(read=read, answer=True))
            return reply.records if reply.answered else None
        self._sync_all(read)
        return None

    def sync(self, equipment: RecordType, request: query_pb2.GetProductionRequest, window: Window | None) -> None:
        read = query_pb2.GetProductionRequest(site_id=request.site_id, equipment_type=request.equipment_type, id=request.id)
        if window is not None and window.start is not None and window.end is not None:
            read.range.start_ms, read.range.end_ms = window.start, window.end
        self._sync_all(read)

    def sync_all(self) -> None:
        self._ask_all(ingest_pb2.ReadRecentRequest(everything=True))

    def _sync_all(self, read: query_pb2.GetProductionRequest) -> None:
        self._ask_all(ingest_pb2.ReadRecentRequest(read=read, answer=False))

    def _ask_all(self, asked: ingest_pb2.ReadRecentRequest) -> None:
        for reply in self._pool.map(lambda stub: self._call(stub, asked), self._stubs):
            del reply

    def _call(self, stub: ingest_pb2_grpc.IngestStub, asked: ingest_pb2.ReadRecentRequest) -> ingest_pb2.ReadRecentReply:
        try:
            reply: ingest_pb2.ReadRecentReply = stub.ReadRecent(asked, timeout=self._timeout_s)
        except grpc.RpcError as error:
            failure = from_rpc_status(rpc_status.from_call(cast(grpc.Call, error)))
            # An ingest replica that cannot say it stored what it acknowledged: the read cannot be complete.
            raise failure or ApiFailure(ApiStatus.SERVER_ERROR, "an ingest replica is unavailable") from None
        return reply
