"""The v1 URL space, checked in the order of docs/api/v1.md §3.

    PUT /v1/<site_id>/production/<equipment_type>        GET .../<equipment_id>
    PUT /v1/<site_id>/forecast/<forecast_type>           GET .../<forecast_id>
    PUT /v1/<site_id>/commitment                         GET .../<commitment_id>
    PUT /v1/<site_id>/tariff                             GET .../<tariff_id>

`shape` does step 1 (endpoint shape 404) and names the path's route template,
`resolve` steps 2-3 (method 405, site_id 1104); the app checks the identity
(403, step 4) and then calls `check_target` (1105, 1106, 1107, step 5).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote

from storecast.catalog import EQUIPMENT_TYPES, FORECAST_TYPES, UINT32_MAX, RecordType
from storecast.status import ApiFailure, ApiStatus

# Categories, and the types a typed category's second segment names.
TYPED_CATEGORIES: dict[str, dict[str, RecordType]] = {"production": EQUIPMENT_TYPES, "forecast": FORECAST_TYPES}
UNTYPED_CATEGORIES = ("commitment", "tariff")

_UINT = re.compile(r"[0-9]{1,10}")
_METHODS = {"GET": "GET", "HEAD": "GET", "PUT": "PUT"}
# The Allow header of a 405, by what the path takes.
ALLOW_GET, ALLOW_PUT, ALLOW_ANY = "GET, HEAD", "PUT", "GET, HEAD, PUT"


class MethodNotAllowed(ApiFailure):
    """405/1102 with the methods the path does take: RFC 9110 requires them in an Allow header."""

    def __init__(self, detail: str, allow: str) -> None:
        super().__init__(ApiStatus.INVALID_METHOD, detail)
        self.allow = allow


@dataclass(frozen=True, slots=True)
class Endpoint:
    method: str  # "GET" (HEAD included) or "PUT"
    site_id: int
    category: str
    segments: tuple[str, ...]  # after the category, percent-decoded


@dataclass(frozen=True, slots=True)
class Target:
    method: str
    site_id: int
    category: str
    record_type: RecordType | None  # production and forecast only
    id: int | None  # GET only

    # The route table pairs each handler with its path's shape; these say so to the type checker.
    def type_number(self) -> int:
        """The enum number of the equipment or forecast type the path names."""
        if self.record_type is None:
            raise ApiFailure(ApiStatus.SERVER_ERROR, f"a {self.category} path names no type")
        return self.record_type.enum_value

    def record_id(self) -> int:
        """The id the path of a GET names."""
        if self.id is None:
            raise ApiFailure(ApiStatus.SERVER_ERROR, f"a {self.category} {self.method} path names no id")
        return self.id


def parse_uint32(text: str) -> int | None:
    if not _UINT.fullmatch(text):
        return None
    value = int(text)
    return value if value <= UINT32_MAX else None


def _segment_counts(category: str) -> tuple[int, int] | None:
    """(PUT, GET) numbers of segments after the category, or None if unknown."""
    if category in TYPED_CATEGORIES:
        return (1, 2)
    if category in UNTYPED_CATEGORIES:
        return (0, 1)
    return None


@dataclass(frozen=True, slots=True)
class Shape:
    """A path shaped as a v1 endpoint: 2 to 4 non-empty segments after /v1, percent-decoded,
    as many after a known category as one of its endpoints has."""

    site_text: str
    category: str
    rest: tuple[str, ...]  # after the category
    counts: tuple[int, int] | None  # the category's (PUT, GET) numbers of segments; None: unknown

    @property
    def route(self) -> str | None:
        """The route template (`/v1/{site_id}/production/{type}/{id}`), whatever the values of the
        variable segments; None for an unknown category, whose paths name no route."""
        if self.counts is None:
            return None
        typed = "/{type}" if self.category in TYPED_CATEGORIES else ""
        with_id = "/{id}" if len(self.rest) == self.counts[1] else ""
        return f"/v1/{{site_id}}/{self.category}{typed}{with_id}"


def shape(raw_path: bytes) -> Shape:
    """The path's shape (docs/api/v1.md §3, step 1), or 404 (1101)."""
    raw_segments = raw_path.decode("latin-1").split("/")
    # ["", "v1", site_id, category, ...]: 2 to 4 segments after v1, none empty.
    if raw_segments[:2] != ["", "v1"] or not 4 <= len(raw_segments) <= 6 or "" in raw_segments[2:]:
        raise ApiFailure(ApiStatus.INVALID_ENDPOINT, "no v1 endpoint has this path")
    site_text, category, *rest = (unquote(s) for s in raw_segments[2:])
    counts = _segment_counts(category)
    if counts is not None and len(rest) not in counts:
        raise ApiFailure(ApiStatus.INVALID_ENDPOINT, f"no {category} endpoint has this path")
    return Shape(site_text, category, tuple(rest), counts)


def resolve(method: str, path: Shape) -> Endpoint:
    """The endpoint a method asks of a path's shape (docs/api/v1.md §3, steps 2 and 3)."""
    counts, category = path.counts, path.category
    # An unknown category's path could be either; its 1105 comes after identity.
    allow = ALLOW_ANY if counts is None else ALLOW_PUT if len(path.rest) == counts[0] else ALLOW_GET
    verb = _METHODS.get(method)
    if verb is None:
        raise MethodNotAllowed(f"{method} is not allowed; use GET or PUT", allow)
    if verb == "GET" and allow == ALLOW_PUT:
        raise MethodNotAllowed(f"this {category} endpoint takes PUT; GET needs an id", allow)
    if verb == "PUT" and allow == ALLOW_GET:
        raise MethodNotAllowed(f"this {category} endpoint takes GET; PUT has no id", allow)
    site_id = parse_uint32(path.site_text)
    if site_id is None:
        raise ApiFailure(ApiStatus.INVALID_SITE_ID, f"site_id must be an unsigned 32-bit integer, got {path.site_text!r}")
    return Endpoint(verb, site_id, category, path.rest)


def check_target(endpoint: Endpoint) -> Target:
    category, rest = endpoint.category, list(endpoint.segments)
    counts = _segment_counts(category)
    if counts is None:
        known = ", ".join([*TYPED_CATEGORIES, *UNTYPED_CATEGORIES])
        raise ApiFailure(ApiStatus.INVALID_CATEGORY, f"unknown category {category!r}; expected one of {known}")
    record_type = None
    if category in TYPED_CATEGORIES:
        types = TYPED_CATEGORIES[category]
        type_name = rest.pop(0)
        record_type = types.get(type_name)
        if record_type is None:
            raise ApiFailure(ApiStatus.INVALID_TYPE, f"unknown {category} type {type_name!r}; expected one of {', '.join(types)}")
    record_id = None
    if rest:
        record_id = parse_uint32(rest[0])
        if record_id is None:
            raise ApiFailure(ApiStatus.INVALID_ID, f"id must be an unsigned 32-bit integer, got {rest[0]!r}")
    return Target(endpoint.method, endpoint.site_id, category, record_type, record_id)
