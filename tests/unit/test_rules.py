"""Every validation rule refuses a v1 JSON body and the equivalent RecordBatch alike, by construction.

The rules are declared once, in services/lib/records/rules.py. This walks
their table: each rule is broken, on each side of each of its bounds, at every
place a PUT of any category holds a value of the rule's kind, and the same
records go through the services' own two input paths (ingest's RecordInput,
the vector service's writers), in process: decoding needs no store. Both must
refuse with the same status and the same message, the rule's own words at the
value's place; a rule added to the table is checked here without a line more.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from google.protobuf.internal.containers import RepeatedCompositeFieldContainer

from services.ingest.service import RecordInput
from services.lib.records import rules
from services.lib.records.columns import Columns
from services.lib.store.schema import COMMITMENT_TABLE, FORECAST_TABLES, TARIFF_TABLE
from services.vector.write import TariffWriter, VectorWriter
from storecast.catalog import COMMITMENT, EQUIPMENT_TYPES, FORECAST_TYPES, TARIFF, Attribute, Kind, RecordType
from storecast.status import ApiFailure, ApiStatus
from storecast.v1 import records_pb2
from tests.helpers import MINUTE, T0, JsonObject, body, production_batch, vector_batch

SITE = 1
TypedColumns = RepeatedCompositeFieldContainer[records_pb2.Column]
SAMPLE = {Kind.FLOAT: 1.5, Kind.UNSIGNED_INT: 3, Kind.STRING: "x"}


def attributes(declared: tuple[Attribute, ...]) -> JsonObject:
    return {a.name: SAMPLE[a.kind] for a in declared}


@dataclass(frozen=True)
class Category:
    """A PUT category: its valid items, where each kind of value sits in them, and its two input paths."""

    name: str
    items: Callable[[], list[JsonObject]]
    keys: dict[str, rules.Values]  # of an item
    item_attributes: tuple[Attribute, ...]
    period_attributes: tuple[Attribute, ...] | None  # None: items have no periods
    from_json: Callable[[bytes], Columns]
    to_batch: Callable[[list[JsonObject]], records_pb2.RecordBatch]
    from_batch: Callable[[records_pb2.RecordBatch], Columns]

    def kinds(self, period: bool) -> dict[str, rules.Values]:
        """The kind of each value of an item, or of a period."""
        if period:
            declared = self.period_attributes or ()
            return {"timestamp": rules.TIMESTAMP, **{a.name: rules.attribute_values(a) for a in declared}}
        return self.keys | {a.name: rules.attribute_values(a) for a in self.item_attributes}

    def attribute_columns(
        self, batch: records_pb2.RecordBatch, period: bool
    ) -> RepeatedCompositeFieldContainer[records_pb2.Column]:
        """Where a RecordBatch holds the attributes of an item, or of a period."""
        return batch.entry_columns if self.period_attributes is not None and not period else batch.columns


def production(record_type: RecordType) -> Category:
    records = RecordInput(record_type)
    return Category(
        f"production/{record_type.name}",
        lambda: [{"timestamp": T0 + i, "id": 7, **attributes(record_type.attributes)} for i in range(2)],
        {"timestamp": rules.TIMESTAMP, "id": rules.UINT32},
        record_type.attributes,
        None,
        records.columns,
        lambda items: production_batch(record_type, items),
        records.batch_columns,
    )


def periods(record_type: RecordType) -> list[JsonObject]:
    return [{"timestamp": T0 + MINUTE * p, **attributes(record_type.attributes)} for p in range(2)]


def vectors(name: str, record_type: RecordType, writer: VectorWriter) -> Category:
    return Category(
        name,
        lambda: [
            {"creation_timestamp": T0 + i, "id": 7, **attributes(record_type.vector_attributes), "values": periods(record_type)}
            for i in range(2)
        ],
        {"creation_timestamp": rules.TIMESTAMP, "id": rules.UINT32, "values": rules.PERIODS},
        record_type.vector_attributes,
        record_type.attributes,
        lambda data: writer.columns(SITE, data),
        lambda items: vector_batch(record_type, items),
        lambda batch: writer.batch_columns(SITE, batch),
    )


def tariffs() -> Category:
    writer = TariffWriter(TARIFF_TABLE, TARIFF)
    return Category(
        "tariff",
        lambda: [{"id": 7 + i, "values": periods(TARIFF)} for i in range(2)],
        {"id": rules.UINT32, "values": rules.PERIODS},
        (),
        TARIFF.attributes,
        lambda data: writer.columns(SITE, data),
        lambda items: vector_batch(TARIFF, items, with_creation=False),
        lambda batch: writer.batch_columns(SITE, batch),
    )


CATEGORIES = [
    *(production(t) for t in EQUIPMENT_TYPES.values()),
    *(vectors(f"forecast/{n}", t, VectorWriter(FORECAST_TABLES[n], t)) for n, t in FORECAST_TYPES.items()),
    vectors("commitment", COMMITMENT, VectorWriter(COMMITMENT_TABLE, COMMITMENT)),
    tariffs(),
]
LEVELS = {False: "values[{i}]", True: "values[{i}].values[{i}]"}  # an item, a period (the i-th of the i-th item)


def place(item: JsonObject, period: bool) -> JsonObject:
    return item["values"][0] if period else item


def edges(kind: rules.Values, rule: rules.Rule, valid: Any) -> Iterator[tuple[Any, Any]]:
    """For each of the rule's bounds, the last value within it and the first beyond it (`valid`: a value of the kind,
    whose first element makes a longer or shorter one)."""
    meta = rule.meta

    def step(value: Any, towards: float) -> Any:
        return math.nextafter(value, towards) if kind.base is float else value + (1 if towards > 0 else -1)

    if meta.ge is not None:
        yield meta.ge, step(meta.ge, -math.inf)
    if meta.gt is not None:
        yield step(meta.gt, math.inf), meta.gt
    if meta.le is not None:
        yield meta.le, step(meta.le, math.inf)
    if meta.lt is not None:
        yield step(meta.lt, -math.inf), meta.lt
    if meta.min_length is not None:
        yield valid[:1] * meta.min_length, valid[:1] * (meta.min_length - 1)
    if meta.max_length is not None:
        yield valid[:1] * meta.max_length, valid[:1] * (meta.max_length + 1)


@dataclass(frozen=True)
class Case:
    category: Category
    period: bool  # the field of a period, else of an item
    field: str
    kind: rules.Values
    rule: rules.Rule
    within: Any  # the last value the bound takes
    beyond: Any  # the first it refuses

    @property
    def where(self) -> str:
        return f"{LEVELS[self.period].format(i=1)}.{self.field}"

    def items(self, value: Any) -> list[JsonObject]:
        """The category's valid items, the value put at the second item (or its second period)."""
        items = self.category.items()
        (items[1]["values"][1] if self.period else items[1])[self.field] = value
        return items


def cases() -> Iterator[Case]:
    for category in CATEGORIES:
        valid = category.items()[0]
        for period in (False, True) if category.period_attributes is not None else (False,):
            for field, kind in category.kinds(period).items():
                for rule in kind.rules:
                    for within, beyond in edges(kind, rule, place(valid, period)[field]):
                        yield Case(category, period, field, kind, rule, within, beyond)


CASES = list(cases())


def refusal(put: Callable[[], object]) -> ApiFailure:
    with pytest.raises(ApiFailure) as caught:
        put()
    return caught.value


def same(columns: Columns) -> list[Any]:
    """Insert columns as plain lists: typed input has numpy arrays where JSON has tuples."""
    return [
        column.tolist() if isinstance(column, np.ndarray) else [list(v) if isinstance(v, tuple) else v for v in column]
        for column in columns
    ]


CASE_IDS = [f"{c.category.name}:{c.where}={c.beyond!r:.20}" for c in CASES]


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_a_rule_broken_in_json_and_typed_input_is_refused_alike(case: Case) -> None:
    items = case.items(case.beyond)
    expected = (ApiStatus.PAYLOAD_CONTENT_ERROR, f"payload content error: {case.rule.at(case.where)}")
    from_json = refusal(lambda: case.category.from_json(body(items)))
    assert (from_json.code, from_json.message) == expected
    try:
        batch = case.category.to_batch(items)
    except ValueError:
        # A RecordBatch cannot hold the value: the field is a uint32, which holds UINT32's bounds.
        assert case.kind is rules.UINT32
        return
    from_batch = refusal(lambda: case.category.from_batch(batch))
    assert (from_batch.code, from_batch.message) == expected


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_the_value_at_a_bound_is_taken_alike(case: Case) -> None:
    items = case.items(case.within)
    from_json = case.category.from_json(body(items))
    assert same(case.category.from_batch(case.category.to_batch(items))) == same(from_json)


def test_every_rule_of_the_table_is_broken_above() -> None:
    table = {(kind, rule) for kind in rules.KINDS for rule in kind.rules}
    assert {(case.kind, case.rule) for case in CASES} == table
    # Timestamps (2 rules), uint32 (2), floats, periods, labels: a table the walk could not miss whole.
    assert len(table) >= 7


def test_every_bound_is_spelled_for_one_rule() -> None:
    """describe() finds a broken bound's rule by how msgspec states it: no two rules may state one bound alike."""
    for kind in rules.KINDS:
        for rule in kind.rules:
            for spelling in rule.spellings(kind.json_type):
                assert rules.spelled(*spelling) is rule, spelling


# ---- what is not a bound: types, names, periods -------------------------------------------

# The field of a typed Column that holds each kind of attribute, and a JSON value of the type each field holds.
TYPED_FIELDS = {Kind.FLOAT: "doubles", Kind.UNSIGNED_INT: "uints", Kind.STRING: "strings"}
JSON_VALUES = {"doubles": 2.5, "uints": 2, "strings": "2"}


def attribute_places() -> Iterator[tuple[Category, bool, Attribute]]:
    for category in CATEGORIES:
        yield from ((category, False, a) for a in category.item_attributes)
        yield from ((category, True, a) for a in category.period_attributes or ())


@pytest.mark.parametrize(("category", "period", "attribute"), list(attribute_places()))
def test_a_value_of_another_type_is_refused_alike(category: Category, period: bool, attribute: Attribute) -> None:
    for field, value in JSON_VALUES.items():
        if field == TYPED_FIELDS[attribute.kind] or (attribute.kind is Kind.FLOAT and field == "uints"):
            continue  # its own type; a JSON integer is a number
        items = category.items()
        place(items[0], period)[attribute.name] = value
        batch = category.to_batch(category.items())
        columns = category.attribute_columns(batch, period)
        index = next(i for i, c in enumerate(columns) if c.name == attribute.name)
        rows = len(getattr(columns[index], TYPED_FIELDS[attribute.kind]))
        columns[index].CopyFrom(records_pb2.Column(name=attribute.name))
        getattr(columns[index], field).extend([value] * rows)
        from_json = refusal(lambda: category.from_json(body(items)))
        from_batch = refusal(lambda: category.from_batch(batch))
        assert (from_batch.code, from_batch.message) == (from_json.code, from_json.message)
        assert from_json.code == ApiStatus.PAYLOAD_CONTENT_ERROR
        assert from_json.message.startswith(f"payload content error: {LEVELS[period].format(i=0)}.{attribute.name}: expected ")


def test_two_periods_of_a_vector_at_one_timestamp_are_refused_alike() -> None:
    for category in CATEGORIES:
        if "creation_timestamp" not in category.keys:
            continue  # tariff periods at one timestamp: the last one counts
        items = category.items()
        items[1]["values"].append({**items[1]["values"][0]})
        message = (
            f"payload content error: values[1].values[2].timestamp: {T0} is already the timestamp of values[1].values[0];"
            " a vector has one period per timestamp"
        )
        from_json = refusal(lambda: category.from_json(body(items)))
        from_batch = refusal(lambda: category.from_batch(category.to_batch(items)))
        assert (from_json.code, from_json.message) == (from_batch.code, from_batch.message) == (1303, message), category.name


def test_an_unknown_attribute_is_refused_alike() -> None:
    for category in CATEGORIES:
        items = category.items()
        batch = category.to_batch(items)
        batch.columns.append(records_pb2.Column(name="zz", doubles=[1.0] * len(batch.timestamps)))
        place(items[0], category.period_attributes is not None)["zz"] = 1.0
        from_json = refusal(lambda: category.from_json(body(items)))
        from_batch = refusal(lambda: category.from_batch(batch))
        where = LEVELS[category.period_attributes is not None].format(i=0)
        assert from_json.message == from_batch.message == f"payload content error: {where}.zz: unknown attribute", category.name


def test_nothing_to_store_is_refused_alike() -> None:
    for category in CATEGORIES:
        from_json = refusal(lambda: category.from_json(body([])))
        from_batch = refusal(lambda: category.from_batch(records_pb2.RecordBatch()))
        assert (from_json.code, from_json.message) == (from_batch.code, from_batch.message)
        assert from_json.code == ApiStatus.PAYLOAD_EMPTY_ERROR
