"""The ingest service: validates and stores production records."""

from __future__ import annotations

import grpc
import msgspec
import numpy as np

from services.lib import native, payload
from services.lib.columns import last_occurrences, take, to_columns
from services.lib.rpc import Registration
from services.lib.schema import PRODUCTION_TABLES, Table
from services.lib.store import Store
from storecast.catalog import EQUIPMENT_BY_ENUM
from storecast.status import ApiFailure, ApiStatus
from storecast.v1 import ingest_pb2, ingest_pb2_grpc, records_pb2

_INSERT_SETTINGS = {"optimize_on_insert": 0}


class _EquipmentWriter:
    """Decoder and insert layout for one equipment type."""

    def __init__(self, table: Table, record: type[msgspec.Struct], name: str) -> None:
        self.table = table
        self.decoder = payload.body_decoder(record, name)
        # Columns come out in the record's field order: timestamp, id, attributes.
        self.fields: tuple[str, ...] = record.__struct_fields__
        types = {column.name: column.type for column in table.columns}
        self.field_types = [types[field] for field in self.fields]
        self.column_names = ["site_id", *self.fields]


def _writers() -> dict[int, _EquipmentWriter]:
    writers = {}
    for enum_value, equipment in EQUIPMENT_BY_ENUM.items():
        struct = payload.record_struct(
            equipment.table_suffix, [("timestamp", payload.Timestamp), ("id", payload.Uint32)], equipment
        )
        writers[enum_value] = _EquipmentWriter(PRODUCTION_TABLES[equipment.name], struct, equipment.table_suffix)
    return writers


class IngestService(ingest_pb2_grpc.IngestServicer):
    def __init__(self, store: Store) -> None:
        self._store = store
        self._writers = _writers()

    def PutProduction(self, request: ingest_pb2.PutProductionRequest, context: grpc.ServicerContext) -> records_pb2.PutReply:
        writer = self._writers.get(request.equipment_type)
        if writer is None:
            raise ApiFailure(ApiStatus.INVALID_TYPE, f"unknown equipment type {request.equipment_type}")
        records = payload.decode(writer.decoder, request.body)
        columns = to_columns(records)
        # Within one request the last occurrence of a key wins.
        timestamps, ids = columns[0], columns[1]
        kept = last_occurrences(ids, timestamps)
        if kept is not None:
            columns = take(columns, kept)
        rows = len(columns[0])
        data = native.block(
            [("site_id", "UInt32", np.full(rows, request.site_id, dtype=np.uint32)), *zip(writer.fields, writer.field_types, columns)]
        )
        with self._store.client() as client:
            # The block's keys are already unique, so ClickHouse need not merge it on insert.
            client.raw_insert(
                self._store.table(writer.table.name), writer.column_names, data, fmt="Native", settings=_INSERT_SETTINGS
            )
        return records_pb2.PutReply(stored=rows)


def register(store: Store) -> Registration:
    def add(server: grpc.Server) -> str:
        ingest_pb2_grpc.add_IngestServicer_to_server(IngestService(store), server)
        return ingest_pb2.DESCRIPTOR.services_by_name["Ingest"].full_name

    return add
