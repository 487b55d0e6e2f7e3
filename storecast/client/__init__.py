"""storecast's Python client: put and get for production, forecasts, commitments and tariffs, over
the v1 REST API (client certificates) or gRPC (typed batches), with pandas DataFrames or numpy arrays.

    from storecast.client import Client

    with Client.rest("https://localhost:8443", cert="admin.cert.pem", key="admin.key.pem", ca="ca.cert.pem") as client:
        client.put_production(100, "renewable", frame)            # indexed by timestamp, columns id, p, q
        frame = client.get_production(100, "renewable", 1, start=t0, end=t1, agg="avg", period="15m")

docs/client.md has the rest.
"""

from __future__ import annotations

import ast
from importlib import import_module
from pathlib import Path
from typing import TYPE_CHECKING, Any

# The public names, each from where it lives; `X as X` re-exports it. Type checkers read these
# imports, and the runtime reads this block from the source (`_PUBLIC`): a name is imported on first
# use, so that `storecast serve` and the other commands of the binary (whose argument parser holds
# the client's subcommands) never load pandas and pyarrow, a second's import.
if TYPE_CHECKING:
    from storecast.client.client import Client as Client
    from storecast.client.client import entry_chunks as entry_chunks
    from storecast.client.errors import ApiError as ApiError
    from storecast.client.errors import StorecastError as StorecastError
    from storecast.client.errors import TooLarge as TooLarge
    from storecast.client.errors import TransportError as TransportError
    from storecast.client.frames import Data as Data
    from storecast.client.frames import to_datetime_index as to_datetime_index
    from storecast.client.frames import to_frame as to_frame
    from storecast.client.frames import to_table as to_table
    from storecast.client.grpc_transport import GrpcTransport as GrpcTransport
    from storecast.client.grpc_transport import channel_credentials as channel_credentials
    from storecast.client.query import Aggregation as Aggregation
    from storecast.client.query import Instant as Instant
    from storecast.client.query import Period as Period
    from storecast.client.query import Query as Query
    from storecast.client.query import to_ms as to_ms
    from storecast.client.rest import RestTransport as RestTransport
    from storecast.client.series import Category as Category
    from storecast.client.series import Series as Series
    from storecast.client.series import all_series_names as all_series_names
    from storecast.client.table import RowError as RowError
    from storecast.client.table import Table as Table
    from storecast.client.transport import Transport as Transport


def _public() -> dict[str, str]:
    """The module of each name imported for type checkers above, from this file's source."""
    body = ast.parse(Path(__file__).read_text(encoding="utf-8")).body
    block = next(node for node in body if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING")
    return {alias.name: str(node.module) for node in block.body if isinstance(node, ast.ImportFrom) for alias in node.names}


_PUBLIC = _public()
__all__ = sorted(_PUBLIC)


def __getattr__(name: str) -> Any:
    if name not in _PUBLIC:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(_PUBLIC[name]), name)
