"""The /ext/v1/ and /ext/influx/ URL spaces (docs/api/v1.md §10): their route templates, and which one a path is.

Kept apart from the handlers (gateway/ext.py) so that the metrics and the
OpenAPI document read the same templates without importing the app.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote

PREFIX = "/ext/v1/"

SITES = "/ext/v1/sites"
CATALOG = "/ext/v1/catalog"
INVENTORY = "/ext/v1/{site_id}/inventory"
STAIRCASE = "/ext/v1/{site_id}/forecast/{type}/{id}/staircase"
HORIZON_ERRORS = "/ext/v1/{site_id}/forecast/{type}/{id}/horizon-errors"
# v1's reads with every aggregation of storecast/aggregations.py, by category.
READS = {
    "production": "/ext/v1/{site_id}/production/{type}/{id}",
    "forecast": "/ext/v1/{site_id}/forecast/{type}/{id}",
    "commitment": "/ext/v1/{site_id}/commitment/{id}",
}
ROUTES = (SITES, CATALOG, INVENTORY, STAIRCASE, HORIZON_ERRORS, *READS.values())

# The InfluxDB write APIs (gateway/influx/api.py): fixed paths, compared whole.
INFLUX_PREFIX = "/ext/influx/"
INFLUX_WRITE_V1 = "/ext/influx/write"
INFLUX_WRITE_V2 = "/ext/influx/api/v2/write"
INFLUX_PING = "/ext/influx/ping"
INFLUX_HEALTH = "/ext/influx/health"
INFLUX_ROUTES = (INFLUX_WRITE_V1, INFLUX_WRITE_V2, INFLUX_PING, INFLUX_HEALTH)

_SEGMENTS = {route: tuple(route.split("/")) for route in ROUTES}


@dataclass(frozen=True, slots=True)
class Match:
    route: str  # one of ROUTES
    values: dict[str, str]  # the path's segment for each {name} of the route, percent-decoded


def match(raw_path: bytes) -> Match | None:
    """The route whose shape the path has (its literal segments, and a non-empty segment
    for each variable), or None. Whether the variables are valid is checked later."""
    segments = tuple(unquote(segment) for segment in raw_path.decode("latin-1").split("/"))
    for route, pattern in _SEGMENTS.items():
        if len(segments) != len(pattern):
            continue
        values = {}
        for segment, part in zip(segments, pattern):
            if part.startswith("{"):
                if not segment:
                    break
                values[part[1:-1]] = segment
            elif segment != part:
                break
        else:
            return Match(route, values)
    return None
