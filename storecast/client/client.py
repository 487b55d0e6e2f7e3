"""`Client`: put and get for every category over either transport, with DataFrames or numpy arrays."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from os import PathLike
from pathlib import Path
from types import TracebackType
from typing import Unpack

import grpc
import numpy as np
import pandas as pd

from storecast.client.errors import ApiError, TooLarge
from storecast.client.frames import Data, to_frame, to_table
from storecast.client.grpc_transport import GrpcTransport, channel_credentials
from storecast.client.query import Instant, Query, to_ms
from storecast.client.rest import RestTransport
from storecast.client.series import READ_END_MS, Series
from storecast.client.table import Indices, RowError, Table
from storecast.client.transport import Transport
from storecast.client.v1json import row_of_message
from storecast.query_parameters import ReadOptions

StrPath = str | PathLike[str]
SeriesName = str | Series
Ids = int | Sequence[int]


def _series(series: SeriesName) -> Series:
    return series if isinstance(series, Series) else Series.parse(series)


def entry_chunks(table: Table, size: int) -> Iterator[Indices]:
    """Rows of the table in pieces of `size` rows (entry order) that never split a vector: a piece ends with
    the vector that reaches `size`. Production records and tariff periods are keyed one by one: cut anywhere."""
    layout = table.layout
    if not table.series.is_vector:
        for start in range(0, table.rows, size):
            yield layout.order[start : start + size]
        return
    bounds = layout.bounds(table.rows)
    first = 0
    for i, (_, end) in enumerate(bounds):
        if end - bounds[first][0] >= size or i == len(bounds) - 1:
            yield layout.order[bounds[first][0] : end]
            first = i + 1


class Client:
    """A storecast client over REST (`Client.rest`) or gRPC (`Client.grpc`); the same methods on both.

    Series are named as in the URL space: `production/<equipment type>`,
    `forecast/<forecast type>`, `commitment`, `tariff`. Timestamps are
    epoch milliseconds; query bounds also take datetimes (naive means UTC).
    """

    def __init__(self, transport: Transport) -> None:
        self.transport = transport

    @classmethod
    def rest(
        cls,
        url: str,
        *,
        cert: StrPath | None = None,
        key: StrPath | None = None,
        ca: StrPath | None = None,
        timeout: float = 120.0,
        retries: int = 3,
        max_connections: int = 16,
    ) -> Client:
        """The v1 API at `url` (https://host:8443), presenting `cert`/`key`, trusting `ca`."""
        return cls(
            RestTransport(url, cert=cert, key=key, ca=ca, timeout=timeout, retries=retries, max_connections=max_connections)
        )

    @classmethod
    def grpc(
        cls,
        target: str,
        *,
        cert: StrPath | None = None,
        key: StrPath | None = None,
        ca: StrPath | None = None,
        tls: bool = False,
        credentials: grpc.ChannelCredentials | None = None,
        timeout: float = 120.0,
    ) -> Client:
        """The services at `target` (host:50051): plaintext, or TLS with `tls`, `ca`, `cert`/`key` or `credentials`."""
        if credentials is None and (tls or ca is not None or cert is not None):
            credentials = channel_credentials(*(None if path is None else Path(path).read_bytes() for path in (cert, key, ca)))
        return cls(GrpcTransport(target, credentials=credentials, timeout=timeout))

    def close(self) -> None:
        self.transport.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None, traceback: TracebackType | None) -> None:
        self.close()

    # --- generic --------------------------------------------------------------

    def put(self, site: int, series: SeriesName, data: Data, *, id: int | None = None, batch_size: int | None = None) -> int:
        """Store records; returns how many rows were sent. One request (atomic) unless `batch_size` rows,
        or the server's size limit, cut it into several, each atomic, never splitting a vector."""
        table = to_table(_series(series), data, id)
        if not table.rows:
            return 0
        if batch_size is None:
            return self.put_table(site, table)
        return sum(self._put_rows(site, table, rows) for rows in entry_chunks(table, batch_size))

    def put_table(self, site: int, table: Table) -> int:
        """One atomic request (two halves, each atomic, if it is over the server's size limit)."""
        return self._put_rows(site, table, np.arange(table.rows, dtype=np.intp))

    def _put_rows(self, site: int, table: Table, rows: Indices) -> int:
        part = table if len(rows) == table.rows and bool(np.all(rows == np.arange(table.rows))) else table.take(rows)
        try:
            part.check_entry_attributes()
            self.transport.put(site, table.series, part)
            return part.rows
        except TooLarge:
            chunks = list(entry_chunks(part, max(1, (part.rows + 1) // 2)))
            if len(chunks) < 2:
                raise
            return sum(self._put_rows(site, table, rows[chunk]) for chunk in chunks)
        except ApiError as error:
            row = row_of_message(part, error.status_message)
            if row is not None:
                error.row = int(rows[row])
                error.line = table.line_of(error.row)
            raise
        except RowError as error:
            error.row = int(rows[error.row])
            error.line = table.line_of(error.row)
            raise

    def put_json(self, site: int, series: SeriesName, body: bytes) -> int | None:
        """A v1 PUT body as it is ({"values": [...]}); the records stored, when the transport says (gRPC)."""
        return self.transport.put_json(site, _series(series), body)

    def read(self, site: int, series: SeriesName, ids: Ids, query: Query | None = None) -> Table:
        """Every selected record of each id (following partial responses), in key order."""
        resolved = _series(series)
        tables = [
            table
            for id in ([ids] if isinstance(ids, int) else ids)
            for table in self.transport.read(site, resolved, id, query or Query())
        ]
        return Table.concat(resolved, tables).sorted()

    def iter_read(self, site: int, series: SeriesName, id: int, query: Query | None = None) -> Iterator[Table]:
        """The pieces of one id's read as they come (REST pages, gRPC stream messages)."""
        return self.transport.read(site, _series(series), id, query or Query())

    def vintages(
        self, site: int, series: SeriesName, id: int, generated_after: Instant = 0, generated_before: Instant = READ_END_MS
    ) -> list[int]:
        """The creation timestamps of an id's vectors created in [generated_after, generated_before[."""
        return self.transport.vintages(site, _series(series), id, to_ms(generated_after), to_ms(generated_before))

    def get(
        self,
        site: int,
        series: SeriesName,
        id: Ids,
        *,
        as_of: Instant | None = None,
        datetime_index: bool = False,
        **options: Unpack[ReadOptions],
    ) -> pd.DataFrame:
        """A DataFrame indexed by timestamp ((creation_timestamp, timestamp) for vectors), one column per
        attribute, and an `id` column when `id` is a sequence of ids. The options are the read's query
        parameters (storecast/query_parameters.py: start, end, generated_after, generated_before,
        generate_all, agg, period), those the series' category takes; `as_of` the latest vector
        created at or before it."""
        table = self.read(site, series, id, Query.of(as_of=as_of, **options))
        return to_frame(table, with_id=not isinstance(id, int), datetime_index=datetime_index)

    # --- by category ----------------------------------------------------------

    def put_production(
        self, site: int, equipment_type: str, data: Data, *, id: int | None = None, batch_size: int | None = None
    ) -> int:
        return self.put(site, f"production/{equipment_type}", data, id=id, batch_size=batch_size)

    def get_production(
        self, site: int, equipment_type: str, id: Ids, *, datetime_index: bool = False, **options: Unpack[ReadOptions]
    ) -> pd.DataFrame:
        return self.get(site, f"production/{equipment_type}", id, datetime_index=datetime_index, **options)

    def put_forecast(
        self, site: int, forecast_type: str, data: Data, *, id: int | None = None, batch_size: int | None = None
    ) -> int:
        return self.put(site, f"forecast/{forecast_type}", data, id=id, batch_size=batch_size)

    def get_forecast(
        self,
        site: int,
        forecast_type: str,
        id: Ids,
        *,
        as_of: Instant | None = None,
        datetime_index: bool = False,
        **options: Unpack[ReadOptions],
    ) -> pd.DataFrame:
        return self.get(site, f"forecast/{forecast_type}", id, as_of=as_of, datetime_index=datetime_index, **options)

    def put_commitment(self, site: int, data: Data, *, id: int | None = None, batch_size: int | None = None) -> int:
        return self.put(site, "commitment", data, id=id, batch_size=batch_size)

    def get_commitment(
        self, site: int, id: Ids, *, as_of: Instant | None = None, datetime_index: bool = False, **options: Unpack[ReadOptions]
    ) -> pd.DataFrame:
        return self.get(site, "commitment", id, as_of=as_of, datetime_index=datetime_index, **options)

    def put_tariff(self, site: int, data: Data, *, id: int | None = None, batch_size: int | None = None) -> int:
        return self.put(site, "tariff", data, id=id, batch_size=batch_size)

    def get_tariff(self, site: int, id: Ids, *, datetime_index: bool = False, **options: Unpack[ReadOptions]) -> pd.DataFrame:
        return self.get(site, "tariff", id, datetime_index=datetime_index, **options)
