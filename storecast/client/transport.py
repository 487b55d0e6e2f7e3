"""What the client needs of a transport; REST (rest.py) and gRPC (grpc_transport.py) both provide it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

from storecast.client.query import Query
from storecast.client.series import Series
from storecast.client.table import Table


class Transport(Protocol):
    def put(self, site: int, series: Series, table: Table) -> int | None:
        """Store the table's records in one atomic request; the records stored when the transport says."""

    def put_json(self, site: int, series: Series, body: bytes) -> int | None:
        """Store a v1 PUT body as it is."""

    def read(self, site: int, series: Series, id: int, query: Query) -> Iterator[Table]:
        """Every record the query selects, in pieces (pages, stream messages), without a cursor to follow."""

    def vintages(self, site: int, series: Series, id: int, generated_after: int, generated_before: int) -> list[int]:
        """The creation timestamps of the vectors of an id created in [generated_after, generated_before[, ascending."""

    def close(self) -> None: ...
