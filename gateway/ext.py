"""The /ext/v1/ tree (docs/api/v1.md §10): what is stored, the catalog, a forecast's staircase and errors,
and v1's reads with every aggregation (storecast/aggregations.py; v1 serves min, max and avg).

    GET /ext/v1/sites                                          the sites the caller may read that hold data
    GET /ext/v1/catalog                                        every type and its attributes
    GET /ext/v1/{site_id}/inventory                            every series of the site
    GET /ext/v1/{site_id}/forecast/{type}/{id}/staircase       ?horizon=6h[&from=..&to=..]
    GET /ext/v1/{site_id}/forecast/{type}/{id}/horizon-errors  ?equipment=meter&equipment_id=3&attribute=p
                                                               &period=1h&horizon_bucket=1h[&forecast_attribute=p][&from=..&to=..]
    GET /ext/v1/{site_id}/production/{type}/{id}               v1's query string, `agg` any aggregation
    GET /ext/v1/{site_id}/forecast/{type}/{id}                 likewise
    GET /ext/v1/{site_id}/commitment/{id}                      likewise

The v1 envelope, codes, identity, permissions and rate limit, through the
Gatekeeper /v1 shares, checked in /v1's order: the path's shape (404, 1101), the method
(405, 1102), the site_id (1104), the identity (403, 1400; then 429), the
path's type and id (1106, 1107), then the query string (12xx).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from gateway import ext_routing, params, reads, routing
from gateway.backends import Backends
from gateway.gatekeeper import Gatekeeper
from gateway.metrics import note_route
from gateway.responses import answer, caller, request_id_of, results_response
from storecast.aggregations import AGGREGATIONS
from storecast.catalog import COMMITMENT, EQUIPMENT_TYPES, FORECAST_TYPES, TARIFF, Attribute, RecordType
from storecast.status import ApiFailure, ApiStatus
from storecast.v1 import catalog_pb2, inventory_pb2, records_pb2, vector_pb2

Handler = Callable[[Request, dict[str, str]], Awaitable[Response]]
JsonItem = dict[str, object]

# The query parameters of each endpoint that takes any, as params.parse names them.
STAIRCASE_QUERY = ("horizon", *params.RANGE)
HORIZON_ERRORS_QUERY = (
    "equipment",
    "equipment_id",
    "attribute",
    "period",
    "horizon_bucket",
    "forecast_attribute",
    *params.RANGE,
)


class ExtApi:
    """The ASGI app of /ext/v1/: each request is routed, authorized and, but for the catalog, one gRPC call."""

    def __init__(self, gatekeeper: Gatekeeper) -> None:
        self._gatekeeper = gatekeeper
        # Set by the app's lifespan: gRPC aio channels belong to the serving event loop.
        self.backends: Backends
        self._catalog = listing(catalog())
        self._handlers: dict[str, Handler] = {
            ext_routing.SITES: self.get_sites,
            ext_routing.CATALOG: self.get_catalog,
            ext_routing.INVENTORY: self.get_inventory,
            ext_routing.STAIRCASE: self.get_staircase,
            ext_routing.HORIZON_ERRORS: self.get_horizon_errors,
            **{route: self._reader(category) for category, route in ext_routing.READS.items()},
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await answer(self.handle, scope, receive, send)

    async def handle(self, request: Request) -> Response:
        matched = ext_routing.match(request.scope.get("raw_path") or request.scope["path"].encode())
        if matched is None:
            raise ApiFailure(ApiStatus.INVALID_ENDPOINT, "no /ext/v1 endpoint has this path")
        note_route(request.scope, matched.route)
        if request.method not in ("GET", "HEAD"):
            raise routing.MethodNotAllowed(f"{request.method} is not allowed; use GET", routing.ALLOW_GET)
        return await self._handlers[matched.route](request, matched.values)

    async def get_sites(self, request: Request, values: dict[str, str]) -> Response:
        cn = self._gatekeeper.identify(request)
        sites = self._gatekeeper.permissions.readable_sites(cn)
        if sites is None:
            raise ApiFailure(ApiStatus.PERMISSION_ERROR, f"{caller(cn)} may not read any site")
        self._gatekeeper.admit(cn)
        params.parse(request.scope["query_string"], (), "/ext/v1/sites")
        if not sites:
            return results_response(request, listing([]))
        # An empty `among` would ask for every site.
        call = inventory_pb2.ListSitesRequest(among=[] if sites == "*" else sorted(sites))
        backends = self.backends
        reply = await backends.call(backends.inventory.ListSites, call, request_id_of(request.scope))
        return results_response(request, listing([{"site_id": site_id} for site_id in reply.site_ids]))

    async def get_catalog(self, request: Request, values: dict[str, str]) -> Response:
        # No site's data, but still only for certificates the permissions file names.
        cn = self._gatekeeper.identify(request)
        if not self._gatekeeper.permissions.knows(cn):
            raise ApiFailure(ApiStatus.PERMISSION_ERROR, f"{caller(cn)} is granted no access")
        self._gatekeeper.admit(cn)
        params.parse(request.scope["query_string"], (), "/ext/v1/catalog")
        return results_response(request, self._catalog)

    async def get_inventory(self, request: Request, values: dict[str, str]) -> Response:
        site_id = self._readable_site(request, values)
        params.parse(request.scope["query_string"], (), "an inventory")
        backends = self.backends
        call = inventory_pb2.SiteInventoryRequest(site_id=site_id)
        inventory = await backends.call(backends.inventory.GetSiteInventory, call, request_id_of(request.scope))
        return results_response(request, listing([series_item(series) for series in inventory.series]))

    async def get_staircase(self, request: Request, values: dict[str, str]) -> Response:
        site_id = self._readable_site(request, values)
        forecast_type, forecast_id = _forecast(values)
        query = params.parse(request.scope["query_string"], STAIRCASE_QUERY, "a staircase")
        call = vector_pb2.GetStaircaseRequest(
            site_id=site_id,
            forecast_type=forecast_type,
            id=forecast_id,
            range=params.interval(query, "from", "to"),
            horizon_ms=_duration(query, "horizon", zero=True, example="6h"),
        )
        backends = self.backends
        records = await backends.call(backends.vector.GetStaircase, call, request_id_of(request.scope))
        return results_response(request, records)

    async def get_horizon_errors(self, request: Request, values: dict[str, str]) -> Response:
        site_id = self._readable_site(request, values)
        forecast_type, forecast_id = _forecast(values)
        query = params.parse(request.scope["query_string"], HORIZON_ERRORS_QUERY, "horizon errors")
        equipment_name = _required(query, "equipment")
        equipment = EQUIPMENT_TYPES.get(equipment_name)
        if equipment is None:
            raise ApiFailure(
                ApiStatus.INVALID_TYPE, f"unknown equipment type {equipment_name!r}; expected one of {', '.join(EQUIPMENT_TYPES)}"
            )
        equipment_id = routing.parse_uint32(_required(query, "equipment_id"))
        if equipment_id is None:
            raise ApiFailure(
                ApiStatus.INVALID_ID, f"equipment_id must be an unsigned 32-bit integer, got {query['equipment_id']!r}"
            )
        call = vector_pb2.GetHorizonErrorsRequest(
            site_id=site_id,
            forecast_type=forecast_type,
            id=forecast_id,
            range=params.interval(query, "from", "to"),
            equipment_type=catalog_pb2.EquipmentType.ValueType(equipment.enum_value),
            equipment_id=equipment_id,
            attribute=_required(query, "attribute"),
            period_ms=_duration(query, "period", example="1h"),
            horizon_bucket_ms=_duration(query, "horizon_bucket", example="1h"),
            forecast_attribute=query.get("forecast_attribute", ""),
        )
        backends = self.backends
        records = await backends.call(backends.vector.GetHorizonErrors, call, request_id_of(request.scope))
        return results_response(request, records)

    def _reader(self, category: str) -> Handler:
        """The handler of a category's read: v1's, with every aggregation."""

        async def get_records(request: Request, values: dict[str, str]) -> Response:
            site_id = self._readable_site(request, values)
            segments = tuple(values[name] for name in ("type", "id") if name in values)
            target = routing.check_target(routing.Endpoint("GET", site_id, category, segments))
            return await reads.read(self.backends, request, target, AGGREGATIONS)

        return get_records

    def _readable_site(self, request: Request, values: dict[str, str]) -> int:
        """The path's site_id (1104 if bad), once the caller may read it (403, then the rate limit)."""
        site_id = routing.parse_uint32(values["site_id"])
        if site_id is None:
            raise ApiFailure(ApiStatus.INVALID_SITE_ID, f"site_id must be an unsigned 32-bit integer, got {values['site_id']!r}")
        self._gatekeeper.authorize(request, site_id, "read")
        return site_id


def _forecast(values: dict[str, str]) -> tuple[catalog_pb2.ForecastType.ValueType, int]:
    """The path's forecast type (1106) and id (1107)."""
    forecast = FORECAST_TYPES.get(values["type"])
    if forecast is None:
        raise ApiFailure(
            ApiStatus.INVALID_TYPE, f"unknown forecast type {values['type']!r}; expected one of {', '.join(FORECAST_TYPES)}"
        )
    forecast_id = routing.parse_uint32(values["id"])
    if forecast_id is None:
        raise ApiFailure(ApiStatus.INVALID_ID, f"id must be an unsigned 32-bit integer, got {values['id']!r}")
    return catalog_pb2.ForecastType.ValueType(forecast.enum_value), forecast_id


def _required(query: dict[str, str], name: str) -> str:
    if name not in query:
        raise ApiFailure(ApiStatus.INVALID_PARAMETERS, f"{name} is required")
    return query[name]


def _duration(query: dict[str, str], name: str, *, zero: bool = False, example: str) -> int:
    """A required duration in `period`'s syntax, in ms."""
    duration = params.duration_ms(query, name, zero=zero, example=example)
    if duration is None:
        raise ApiFailure(ApiStatus.INVALID_PARAMETERS, f"{name} is required")
    return duration


def listing(results: list[JsonItem]) -> records_pb2.Records:
    """A `results` array as the services' Records carry one, for results_response."""
    return records_pb2.Records(results_json=msgspec.json.encode(results), count=len(results))


def series_item(series: inventory_pb2.Series) -> JsonItem:
    item: JsonItem = {
        "category": series.category,
        "type": series.type or None,
        "id": series.id,
        "first_timestamp": series.first_timestamp,
        "last_timestamp": series.last_timestamp,
        "count": series.count,
    }
    if series.HasField("first_creation_timestamp"):
        item["first_creation_timestamp"] = series.first_creation_timestamp
    if series.HasField("last_creation_timestamp"):
        item["last_creation_timestamp"] = series.last_creation_timestamp
    return item


def catalog() -> list[JsonItem]:
    """Every equipment type, forecast type, commitment and tariff, with their attributes, in catalog order."""
    return [
        *(catalog_item("production", t) for t in EQUIPMENT_TYPES.values()),
        *(catalog_item("forecast", t) for t in FORECAST_TYPES.values()),
        catalog_item("commitment", COMMITMENT, typed=False),
        catalog_item("tariff", TARIFF, typed=False),
    ]


def catalog_item(category: str, record_type: RecordType, *, typed: bool = True) -> JsonItem:
    """A type's attributes (a vector's periods' attributes), and those of a whole vector (a commitment's quality)."""
    return {
        "category": category,
        "type": record_type.name if typed else None,
        "description": record_type.description,
        "attributes": [_attribute(a) for a in record_type.attributes],
        "vector_attributes": [_attribute(a) for a in record_type.vector_attributes],
    }


def _attribute(attribute: Attribute) -> JsonItem:
    return {
        "name": attribute.name,
        "kind": attribute.kind.name.lower(),
        "unit": attribute.unit,
        "description": attribute.description,
    }
