"""storecast's Python client: put and get for production, forecasts, commitments and tariffs, over
the v1 REST API (client certificates) or gRPC (typed batches), with pandas DataFrames or numpy arrays.

    from storecast.client import Client

    with Client.rest("https://localhost:8443", cert="admin.cert.pem", key="admin.key.pem", ca="ca.cert.pem") as client:
        client.put_production(100, "renewable", frame)            # indexed by timestamp, columns id, p, q
        frame = client.get_production(100, "renewable", 1, start=t0, end=t1, agg="avg", period="15m")

README, "Python client", has the rest.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from storecast.client.client import Client, entry_chunks
    from storecast.client.errors import ApiError, StorecastError, TooLarge, TransportError
    from storecast.client.frames import Data, to_datetime_index, to_frame, to_table
    from storecast.client.grpc_transport import GrpcTransport, channel_credentials
    from storecast.client.query import Aggregation, Instant, Period, Query, to_ms
    from storecast.client.rest import RestTransport
    from storecast.client.series import Category, Series, all_series_names
    from storecast.client.table import RowError, Table
    from storecast.client.transport import Transport

# Where each public name lives: imported on first use, so that `storecast serve` (whose argument
# parser holds the client's subcommands) never loads pandas and pyarrow.
_MODULES = {
    "ApiError": "errors",
    "Aggregation": "query",
    "Category": "series",
    "Client": "client",
    "Data": "frames",
    "GrpcTransport": "grpc_transport",
    "Instant": "query",
    "Period": "query",
    "Query": "query",
    "RestTransport": "rest",
    "RowError": "table",
    "Series": "series",
    "StorecastError": "errors",
    "Table": "table",
    "TooLarge": "errors",
    "Transport": "transport",
    "TransportError": "errors",
    "all_series_names": "series",
    "channel_credentials": "grpc_transport",
    "entry_chunks": "client",
    "to_datetime_index": "frames",
    "to_frame": "frames",
    "to_ms": "query",
    "to_table": "frames",
}


def __getattr__(name: str) -> Any:
    if name not in _MODULES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f"{__name__}.{_MODULES[name]}"), name)


__all__ = [
    "ApiError",
    "Aggregation",
    "Category",
    "Client",
    "Data",
    "GrpcTransport",
    "Instant",
    "Period",
    "Query",
    "RestTransport",
    "RowError",
    "Series",
    "StorecastError",
    "Table",
    "TooLarge",
    "Transport",
    "TransportError",
    "all_series_names",
    "channel_credentials",
    "entry_chunks",
    "to_datetime_index",
    "to_frame",
    "to_ms",
    "to_table",
]
