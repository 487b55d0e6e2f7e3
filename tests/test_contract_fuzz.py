"""Contract fuzzing: schemathesis drives every operation of the served OpenAPI
document through the real gateway with the admin certificate, and every answer
must be documented: no 5xx, a status the operation lists, a body and headers
that validate against it, every schema-violating request refused, every
schema-valid PUT stored, and 405 with an Allow header for methods a path does
not take.

`make test` runs a small deterministic budget; `make soak` sets
STORECAST_FUZZ_EXAMPLES higher and STORECAST_FUZZ_COVERAGE=all.
"""

from __future__ import annotations

import itertools
import os
import re
from collections import Counter
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.core.parameters import ParameterLocation
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    positive_data_acceptance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
    unsupported_method,
)

from gateway.openapi import EXAMPLE_TIMESTAMP, Resource, build_document, example_item, resources
from tests.conftest import MAX_RECORDS, Storecast

if TYPE_CHECKING:
    # The test case of an OpenAPI operation, as schemathesis names it for type checkers only.
    from schemathesis.specs.openapi.schemas import OpenApiCase

# Fuzzing-phase requests per operation, schema-valid and not.
EXAMPLES = int(os.environ.get("STORECAST_FUZZ_EXAMPLES", "4"))
# The coverage phase (boundary values, every missing or mistyped field, every
# undeclared method) sends about a hundred requests per operation; `make test`
# gives it one type of each category, `make soak` every operation.
COVERAGE_EVERYWHERE = os.environ.get("STORECAST_FUZZ_COVERAGE") == "all"
COVERED_PATHS = ("production/meter-3p", "forecast/solar", "commitment", "tariff")

# Schema-valid requests go to this site and to these ids, which hold data, so
# that reads reach the store instead of stopping at "id never stored" (1107).
FUZZ_SITE = 4_000_000_001
STORED_IDS = 3

# The document the gateway serves (the fixture checks that it is), loaded at
# import: schemathesis's loader from a fixture, which could fetch it from the
# running gateway, reads `request.node._nodeid`, which pytest 9 no longer has.
DOCUMENT = build_document()


def _config() -> SchemathesisConfig:
    operations = []
    if not COVERAGE_EVERYWHERE:
        covered = "|".join(map(re.escape, COVERED_PATHS))
        operations.append(
            {"exclude-path-regex": rf"^/v1/\{{site_id\}}/({covered})(/|$)", "phases": {"coverage": {"enabled": False}}}
        )
    return SchemathesisConfig.from_dict(
        {
            "generation": {"mode": "all", "max-examples": EXAMPLES, "deterministic": True},
            # The document declares no links between operations, which the stateful phase follows.
            "phases": {"stateful": {"enabled": False}},
            "operations": operations,
        }
    )


schema = schemathesis.openapi.from_dict(DOCUMENT, config=_config())

# Every check that applies to this API (schemathesis's `--checks all`)...
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
    negative_data_rejection,
    unsupported_method,
]
# ...and, for PUTs only, positive_data_acceptance: a schema-valid body is stored
# (201), `1.0` or `1e3` for an integer included, as JSON Schema's `integer` admits
# them (docs/api/v1.md §2). The one rule of a body that JSON Schema cannot state, two
# periods of a forecast or commitment vector at one timestamp (1303), is kept out
# of positive bodies by _aim_at_stored_data. Not for GETs: a schema-valid read may
# rightly be 400 for what OpenAPI 3.1 cannot state either, parameters that come in
# pairs (`from` needs `to`, `period` needs `agg`), or an id never stored for the
# site (1107); those 400s are documented, so status_code_conformance holds them.
PUT_CHECKS = [*CHECKS, positive_data_acceptance]

STATUSES: Counter[str] = Counter()


def _seed_items(resource: Resource, item_id: int) -> list[dict[str, Any]]:
    """Items of one id; id 0 holds more than a response's worth, so reads of it are partial (206)."""
    item = example_item(resource) | {"id": item_id}
    count = MAX_RECORDS + 1 if item_id == 0 else 3
    if not resource.category.vector:
        return [item | {"timestamp": EXAMPLE_TIMESTAMP + i * 60_000} for i in range(count)]
    period = item["values"][0]
    periods = [period | {"timestamp": EXAMPLE_TIMESTAMP + i * 60_000} for i in range(count)]
    if "creation_timestamp" not in item:
        return [item | {"values": periods}]
    # Several vintages, for the generated-after/-before selection.
    return [item | {"creation_timestamp": EXAMPLE_TIMESTAMP + v, "values": periods} for v in range(3)]


@pytest.fixture(scope="module")
def admin_session(storecast: Storecast) -> Iterator[requests.Session]:
    with requests.Session() as session:
        session.cert = storecast.pki.cert("admin")
        session.verify = str(storecast.pki.ca)
        # Else REQUESTS_CA_BUNDLE or a proxy from the environment would win over the test CA.
        session.trust_env = False
        # What is fuzzed is what the gateway serves.
        served = session.get(f"{storecast.base_url}/openapi.json")
        assert served.status_code == 200 and served.json() == DOCUMENT
        for resource in resources():
            url = storecast.base_url + resource.put_path.format(site_id=FUZZ_SITE)
            for item_id in range(STORED_IDS):
                response = session.put(url, json={"values": _seed_items(resource, item_id)})
                assert response.status_code == 201, response.text
        yield session
    print(f"\ncontract fuzz: {STATUSES.total()} requests, by phase and status: {dict(sorted(STATUSES.items()))}")


def _positive_at(case: OpenApiCase, location: ParameterLocation) -> bool:
    return case.meta is not None and not case.meta.is_negative_at(location)


VECTOR_PATHS = frozenset(r.put_path for r in resources() if r.category.vector and "creation_timestamp" in r.category.key)


def _distinct_period_timestamps(vector: dict[str, Any]) -> None:
    """Two periods of a vector at one timestamp are refused (1303), which JSON Schema cannot
    state: the later ones move to free timestamps, kept schema-valid (and integral, as sent)."""
    periods = vector["values"]
    assert isinstance(periods, list), vector
    taken = {period["timestamp"] for period in periods}
    seen: set[float] = set()
    free = (t for t in itertools.count() if t not in taken)
    for period in periods:
        if period["timestamp"] in seen:
            period["timestamp"] = type(period["timestamp"])(next(free))
        seen.add(period["timestamp"])


def _aim_at_stored_data(case: OpenApiCase) -> None:
    """Schema-valid path parameters and bodies go to the fuzz site and its stored ids;
    negative components are left as they were generated."""
    if case.path_parameters and _positive_at(case, ParameterLocation.PATH):
        for name, value in case.path_parameters.items():
            # The coverage phase writes path parameters as strings.
            if isinstance(value, int) or (isinstance(value, str) and value.isdigit()):
                aimed = FUZZ_SITE if name == "site_id" else int(value) % STORED_IDS
                case.path_parameters[name] = type(value)(aimed)
    # (The form bodies of /ext/prom's POSTs hold query parameters, not records.)
    if isinstance(case.body, dict) and _positive_at(case, ParameterLocation.BODY) and not case.path.startswith("/ext/prom/"):
        # A schema-valid body: {"values": [item, ...]}, each item with an integer id,
        # written 7 or, as about half of the generated ones are, 7.0: sent as it is.
        items = case.body["values"]
        assert isinstance(items, list), items
        for item in items:
            assert isinstance(item, dict), item
            item_id = item["id"]
            assert isinstance(item_id, int | float) and float(item_id).is_integer(), item
            item["id"] = type(item_id)(int(item_id) % STORED_IDS)
            if case.path in VECTOR_PATHS:
                _distinct_period_timestamps(item)


@schema.parametrize()
# Every example is a round trip to a server: Hypothesis's speed health checks do not apply.
@settings(max_examples=EXAMPLES, derandomize=True, database=None, deadline=None, suppress_health_check=list(HealthCheck))
def test_every_answer_is_documented(case: OpenApiCase, storecast: Storecast, admin_session: requests.Session) -> None:
    _aim_at_stored_data(case)
    response = case.call(base_url=storecast.base_url, session=admin_session, verify=admin_session.verify, cert=admin_session.cert)
    phase = case.meta.phase.name.value if case.meta is not None else "explicit"
    STATUSES[f"{phase} {response.status_code}"] += 1
    case.validate_response(response, checks=PUT_CHECKS if case.method == "PUT" else CHECKS)
