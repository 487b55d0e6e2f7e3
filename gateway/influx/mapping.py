"""Points of line protocol as production records: one typed RecordBatch per equipment type.

- measurement = the equipment type (storecast/catalog.py's name, `meter-3p`);
- tag `id` = the equipment id, an unsigned 32-bit integer; other tags (Telegraf's
  `host`) are ignored: the store keys a record by (site, type, id, timestamp) only;
- fields = the type's attributes. A float attribute takes any number (`1.5`,
  `2i`, `2u`); an unsigned one takes an integer (`2i`, `2u`) or an integral float
  (`2`, `2.0`), as a JSON body may give `2.0` (docs/api/v1.md §2), since line
  protocol's bare numbers are floats and most clients write them so;
- the timestamp, in the request's precision, floored to the millisecond; a line
  without one takes the time the request was received.

Points of one (type, id, millisecond) are merged, field by field, the later line
winning, as InfluxDB merges the fields of a point written twice: one record each.
Everything is checked here, by the rules the ingest service keeps
(services/lib/records/rules.py), so a body the gateway passes is one the service
stores: a bad line refuses the body before any gRPC call.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.influx.lines import FieldValue, LineError, points
from gateway.routing import parse_uint32
from storecast.catalog import EQUIPMENT_TYPES, TIMESTAMP_LIMIT_MS, UINT32_MAX, Attribute, Kind, RecordType
from storecast.v1 import records_pb2

# A precision as both APIs spell it, and (multiplier, divisor) taking its timestamps to milliseconds.
PRECISIONS: dict[str, tuple[int, int]] = {
    "n": (1, 1_000_000),
    "ns": (1, 1_000_000),
    "u": (1, 1000),
    "us": (1, 1000),
    "ms": (1, 1),
    "s": (1000, 1),
    "m": (60_000, 1),
    "h": (3_600_000, 1),
}
DEFAULT_PRECISION = "ns"

_ATTRIBUTES = {equipment.name: {a.name: a for a in equipment.attributes} for equipment in EQUIPMENT_TYPES.values()}
_TYPE_WORDS = {bool: "a boolean", str: "a string"}


@dataclass(frozen=True, slots=True)
class Write:
    """A body's records: a batch per equipment type, in the order the body first names them."""

    batches: list[tuple[RecordType, records_pb2.RecordBatch]]
    records: int

    @property
    def type_names(self) -> list[str]:
        return [equipment.name for equipment, _ in self.batches]


def to_batches(text: str, precision: str, received_ms: int) -> Write:
    """The body's records; LineError naming the first line that is not line protocol or not a record."""
    multiplier, divisor = PRECISIONS[precision]
    # uniform.py loads pyarrow (about 35 MB): at the first line-protocol body, so a gateway that never gets one does without it.
    from gateway.influx import uniform as uniform_reader

    uniform = uniform_reader.uniform_batch(text.encode(), multiplier, divisor)
    if uniform is not None:
        return Write([uniform], len(uniform[1].timestamps))
    # Per type, per (id, timestamp): the record's attribute values.
    records: dict[str, dict[tuple[int, int], dict[str, float | int]]] = {}
    for point in points(text):
        where = f"line {point.number}"
        equipment = EQUIPMENT_TYPES.get(point.measurement)
        if equipment is None:
            raise LineError(
                f"{where}: unknown measurement {point.measurement!r}; expected an equipment type: {', '.join(EQUIPMENT_TYPES)}"
            )
        attributes = _ATTRIBUTES[equipment.name]
        id_text = point.tags.get("id")
        if id_text is None:
            raise LineError(f"{where}: missing tag 'id' (the equipment id)")
        equipment_id = parse_uint32(id_text)
        if equipment_id is None:
            raise LineError(f"{where}: tag 'id' must be an unsigned 32-bit integer, got {id_text!r}")
        if point.timestamp is None:
            stamp = received_ms
        else:
            stamp = point.timestamp * multiplier // divisor
            if not 0 <= stamp < TIMESTAMP_LIMIT_MS:
                raise LineError(f"{where}: timestamp {point.timestamp} ({precision}) is outside 1970-01-01 to 2200-01-01 (UTC)")
        values = records.setdefault(equipment.name, {}).setdefault((equipment_id, stamp), {})
        for name, value in point.fields.items():
            attribute = attributes.get(name)
            if attribute is None:
                raise LineError(f"{where}: unknown field {name!r} for {equipment.name}")
            if type(value) is float and attribute.kind is Kind.FLOAT:
                values[name] = value  # the usual field: nothing to check
            else:
                values[name] = _value(attribute, value, f"{where}: field {name!r} of {equipment.name}")
    batches = [(EQUIPMENT_TYPES[name], _batch(EQUIPMENT_TYPES[name], rows)) for name, rows in records.items()]
    return Write(batches, sum(len(rows) for rows in records.values()))


def _value(attribute: Attribute, value: FieldValue, where: str) -> float | int:
    if isinstance(value, bool | str):
        expected = "a number" if attribute.kind is Kind.FLOAT else "an unsigned 32-bit integer"
        raise LineError(f"{where}: expected {expected}, got {_TYPE_WORDS[type(value)]}")
    if attribute.kind is Kind.FLOAT:
        return float(value)
    if isinstance(value, float) and not value.is_integer():
        raise LineError(f"{where}: expected an unsigned 32-bit integer, got {value!r}")
    if not 0 <= value <= UINT32_MAX:
        raise LineError(f"{where}: expected an unsigned 32-bit integer, got {value:.0f}")
    return int(value)


def _batch(equipment: RecordType, rows: dict[tuple[int, int], dict[str, float | int]]) -> records_pb2.RecordBatch:
    """The rows as columns: an attribute no row gives is left out (null in every row)."""
    given = set().union(*(values.keys() for values in rows.values()))
    batch = records_pb2.RecordBatch(ids=[key[0] for key in rows], timestamps=[key[1] for key in rows])
    for attribute in equipment.attributes:
        if attribute.name not in given:
            continue
        cells = [values.get(attribute.name) for values in rows.values()]
        column = batch.columns.add(name=attribute.name)
        if attribute.kind is Kind.UNSIGNED_INT:
            column.uints.extend(0 if cell is None else int(cell) for cell in cells)
        else:
            column.doubles.extend(0.0 if cell is None else cell for cell in cells)
        if None in cells:
            column.null_map = bytes(cell is None for cell in cells)
    return batch
