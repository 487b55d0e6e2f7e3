"""The /ext/v1/, /ext/influx/ and /ext/prom/ URL spaces (docs/api/v1.md §10): their route templates, and which one a path is.

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

# The Prometheus query API (gateway/prom/api.py): fixed paths but one, with a label name.
PROM_PREFIX = "/ext/prom/"
PROM_API = "/ext/prom/api/v1/"
PROM_QUERY = "/ext/prom/api/v1/query"
PROM_QUERY_RANGE = "/ext/prom/api/v1/query_range"
PROM_SERIES = "/ext/prom/api/v1/series"
PROM_LABELS = "/ext/prom/api/v1/labels"
PROM_LABEL_VALUES = "/ext/prom/api/v1/label/{name}/values"
PROM_METADATA = "/ext/prom/api/v1/metadata"
PROM_BUILDINFO = "/ext/prom/api/v1/status/buildinfo"
PROM_RULES = "/ext/prom/api/v1/rules"
PROM_EXEMPLARS = "/ext/prom/api/v1/query_exemplars"
PROM_ROUTES = (
    PROM_QUERY,
    PROM_QUERY_RANGE,
    PROM_SERIES,
    PROM_LABELS,
    PROM_LABEL_VALUES,
    PROM_METADATA,
    PROM_BUILDINFO,
    PROM_RULES,
    PROM_EXEMPLARS,
)
_LABEL_VALUES_HEAD, _LABEL_VALUES_TAIL = PROM_LABEL_VALUES.split("{name}")

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


def prom_route(path: str) -> tuple[str | None, str | None]:
    """The /ext/prom route of a (percent-decoded) path, and the label name of label/<name>/values."""
    if path in PROM_ROUTES:
        return path, None
    if path.startswith(_LABEL_VALUES_HEAD) and path.endswith(_LABEL_VALUES_TAIL):
        name = path[len(_LABEL_VALUES_HEAD) : -len(_LABEL_VALUES_TAIL)]
        if name:
            return PROM_LABEL_VALUES, name
    return None, None
