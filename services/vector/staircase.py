"""A forecast's staircase and its errors per horizon, each one ClickHouse query.

The staircase is tshistory's, with a vintage's creation_timestamp as the
insertion date: for each period timestamp t, the period of the latest vintage
holding t created at or before t - horizon. A vintage holding t with a null
value still gives t (null), as a tshistory revision writing NaN would.

The horizon errors pair every period t of every vintage c (with a forecast
value) with the production actual over [t, t + period[ (the average of the
attribute's non-null values; no value, no pair), and group the pairs by
horizon t - c, floored to a multiple of the bucket (a vintage's periods
before its creation give negative horizons).

Both read the newest version of every key, as every other read does: a
replaced vintage, or a replaced production record, counts once, as replaced.
"""

from __future__ import annotations

from dataclasses import dataclass

from services.lib.reads.render import JSON_ARRAY_FORMAT, Member, json_object, leading_timestamp, limit_array
from services.lib.reads.window import Window, check_window, record_limit
from services.lib.rpc.metrics import RECORDS_READ, store_query
from services.lib.store.engine import Store
from services.lib.store.keys import HORIZON_FILTER, KEY_FILTER, KnownIds, newest_versions
from services.lib.store.retention import Retention
from services.lib.store.schema import FORECAST_TABLES, PERIOD_TIMESTAMPS, PRODUCTION_TABLES, period_column
from storecast.catalog import EQUIPMENT_BY_ENUM, FORECAST_BY_ENUM, TIMESTAMP_LIMIT_MS, Attribute, Kind, RecordType
from storecast.status import ApiFailure, ApiStatus
from storecast.v1 import records_pb2, vector_pb2

_DEFAULT_FORECAST_ATTRIBUTE = "p"
# The production records of the request's equipment (KEY_FILTER is the forecast's).
_EQUIPMENT_FILTER = "site_id = {site_id:UInt32} AND id = {equipment_id:UInt32}"
_IN_RANGE = " AND t >= {start:Int64} AND t < {end:Int64}"


def _vintages(table: str, attributes: list[str], where: str) -> str:
    """The newest version of each vintage of the forecast: its creation_timestamp, its
    period timestamps as `s_timestamp` and each attribute's periods as `s_<attribute>`."""
    columns = [f"`{PERIOD_TIMESTAMPS}` AS s_timestamp", *(f"`{period_column(n)}` AS `s_{n}`" for n in attributes)]
    return newest_versions(f"creation_timestamp, {', '.join(columns)}", table, where, "creation_timestamp")


def staircase_sql(table: str, forecast: RecordType, window: Window, limit: int) -> str:
    """Up to `limit` periods of the staircase, ascending by timestamp, rendered."""
    names = [a.name for a in forecast.attributes]
    where = KEY_FILTER
    if window.end is not None:
        # No vintage created at or after end - horizon gives a period before end.
        where += " AND creation_timestamp < {end:Int64} - {horizon:Int64}"
    periods = ", ".join(["s_timestamp AS t", *(f"`s_{n}` AS `p_{n}`" for n in names)])
    # A tuple is never null, so argMax keeps the chosen vintage's null values rather than skipping them.
    chosen = f"argMax(tuple(creation_timestamp, {', '.join(f'`p_{n}`' for n in names)}), creation_timestamp)"
    members = [Member("timestamp", "t"), Member("creation_timestamp", "tupleElement(chosen, 1)")]
    members += [Member(a.name, f"tupleElement(chosen, {i})", a.kind) for i, a in enumerate(forecast.attributes, start=2)]
    in_range = _IN_RANGE if window.start is not None else ""
    return (
        f"SELECT {json_object(members)} FROM ("
        f"SELECT t, {chosen} AS chosen FROM ({_vintages(table, names, where)}) ARRAY JOIN {periods}"
        f" WHERE creation_timestamp <= t - {{horizon:Int64}}{in_range}"
        f" GROUP BY t ORDER BY t LIMIT {limit}"
        f") ORDER BY t"
    )


def horizon_errors_sql(
    forecast_table: str, production_table: str, forecast_attribute: str, attribute: str, window: Window, limit: int
) -> str:
    """Up to `limit` horizon buckets, ascending, rendered: {"horizon_ms", "count", "mae", "bias"}."""
    in_range = _IN_RANGE if window.start is not None else ""
    pairs = (
        f"SELECT creation_timestamp AS c, t, f FROM ({_vintages(forecast_table, [forecast_attribute], KEY_FILTER)})"
        f" ARRAY JOIN s_timestamp AS t, `s_{forecast_attribute}` AS f WHERE f IS NOT NULL{in_range}"
    )
    # Only the records [first t, last t + period[ are read: scalar subqueries are constants by index analysis.
    records = newest_versions(
        f"timestamp AS s, `{attribute}` AS a",
        production_table,
        f"{_EQUIPMENT_FILTER}{HORIZON_FILTER} AND timestamp >= (SELECT min(t) FROM pairs)"
        " AND timestamp < (SELECT max(t) FROM pairs) + {period:Int64}",
        "timestamp",
    )
    # A record at s is in [t, t + period[ only for t in ]s - period, s], whose period-long
    # buckets k = floor(t / period) are floor(s / period) and the one before: an equi-join
    # on k, then the exact test, instead of a join of every record with every t.
    actuals = (
        "SELECT t, avg(a) AS actual FROM ("
        f"SELECT s, a, arrayJoin([intDiv(s, {{period:Int64}}), intDiv(s, {{period:Int64}}) - 1]) AS k"
        f" FROM ({records}) WHERE a IS NOT NULL"
        ") AS r INNER JOIN (SELECT DISTINCT t, intDiv(t, {period:Int64}) AS k FROM pairs) AS q USING k"
        " WHERE s >= t AND s < t + {period:Int64} GROUP BY t"
    )
    members = [
        Member("horizon_ms", "horizon"),
        Member("count", "n"),
        Member("mae", "mae", Kind.FLOAT),
        Member("bias", "bias", Kind.FLOAT),
    ]
    return (
        f"WITH pairs AS ({pairs}) SELECT {json_object(members)} FROM ("
        "SELECT t - c - positiveModulo(t - c, {bucket:Int64}) AS horizon, count() AS n,"
        " avg(abs(f - actual)) AS mae, avg(f - actual) AS bias"
        f" FROM pairs INNER JOIN ({actuals}) AS actuals USING t"
        f" GROUP BY horizon ORDER BY horizon LIMIT {limit}"
        ") ORDER BY horizon"
    )


def _record_type(by_enum: dict[int, RecordType], value: int, what: str) -> RecordType:
    record_type = by_enum.get(value)
    if record_type is None:
        raise ApiFailure(ApiStatus.INVALID_TYPE, f"unknown {what} type {value}")
    return record_type


def _float_attribute(record_type: RecordType, name: str, field: str, what: str) -> Attribute:
    """The named FLOAT attribute of `record_type`; 1200 naming the ones there are otherwise."""
    floats = [a for a in record_type.attributes if a.kind is Kind.FLOAT]
    for attribute in floats:
        if attribute.name == name:
            return attribute
    choices = ", ".join(a.name for a in floats)
    shown = f"{name!r}" if name else "none"
    raise ApiFailure(
        ApiStatus.INVALID_PARAMETERS, f"{field} must be a float attribute of {record_type.name} {what} ({choices}), got {shown}"
    )


def _check_length(value: int, name: str, *, zero: bool = False) -> None:
    """1206 for a length of time out of ]0 (or [0 with `zero`), TIMESTAMP_LIMIT_MS]."""
    if not (0 if zero else 1) <= value <= TIMESTAMP_LIMIT_MS:
        low = "0 or more" if zero else "positive"
        raise ApiFailure(ApiStatus.INVALID_PERIOD, f"{name} must be {low} and at most {TIMESTAMP_LIMIT_MS} ms, got {value}")


def _window(range_: records_pb2.Interval | None) -> Window:
    return check_window(range_, records_pb2.AGGREGATION_UNSPECIFIED, None)


@dataclass(frozen=True, slots=True)
class Staircases:
    """The staircase and horizon-error reads of every forecast type."""

    store: Store
    known_ids: KnownIds
    max_records: int
    # Actuals are records still kept, as the query service reads them.
    retention: Retention

    def staircase(self, request: vector_pb2.GetStaircaseRequest) -> records_pb2.Records:
        forecast = _record_type(FORECAST_BY_ENUM, request.forecast_type, "forecast")
        window = _window(request.range if request.HasField("range") else None)
        _check_length(request.horizon_ms, "horizon", zero=True)
        limit = record_limit(request.max_records, self.max_records)
        table = self.store.table(FORECAST_TABLES[forecast.name].name)
        parameters: dict[str, int | None] = {
            "site_id": request.site_id,
            "id": request.id,
            "horizon": request.horizon_ms,
            "start": window.start,
            "end": window.end,
        }
        # One period more than asked tells whether the answer is partial, and where the next starts.
        rendered = limit_array(self._query(staircase_sql(table, forecast, window, limit + 1), parameters), limit)
        self._known(rendered.count > 0, table, request.site_id, request.id, f"{forecast.name} forecast")
        RECORDS_READ.labels("forecast", forecast.name).inc(rendered.count)
        next_from = None if rendered.first_left_out is None else leading_timestamp(rendered.first_left_out)
        return records_pb2.Records(results_json=rendered.results, count=rendered.count, next_from=next_from)

    def horizon_errors(self, request: vector_pb2.GetHorizonErrorsRequest) -> records_pb2.Records:
        forecast = _record_type(FORECAST_BY_ENUM, request.forecast_type, "forecast")
        equipment = _record_type(EQUIPMENT_BY_ENUM, request.equipment_type, "equipment")
        forecast_attribute = _float_attribute(
            forecast, request.forecast_attribute or _DEFAULT_FORECAST_ATTRIBUTE, "forecast_attribute", "forecasts"
        )
        attribute = _float_attribute(equipment, request.attribute, "attribute", "records")
        _check_length(request.period_ms, "period")
        _check_length(request.horizon_bucket_ms, "horizon_bucket")
        window = _window(request.range if request.HasField("range") else None)
        forecast_table = self.store.table(FORECAST_TABLES[forecast.name].name)
        production_table = self.store.table(PRODUCTION_TABLES[equipment.name].name)
        sql = horizon_errors_sql(
            forecast_table, production_table, forecast_attribute.name, attribute.name, window, self.max_records + 1
        )
        parameters: dict[str, int | None] = {
            "site_id": request.site_id,
            "id": request.id,
            "equipment_id": request.equipment_id,
            "start": window.start,
            "end": window.end,
            "period": request.period_ms,
            "bucket": request.horizon_bucket_ms,
            "horizon": self.retention.horizon_ms("production", equipment.name),
        }
        rendered = limit_array(self._query(sql, parameters), self.max_records)
        if rendered.first_left_out is not None:
            # Buckets are not periods: there is no next_from to follow, so the question is too fine.
            raise ApiFailure(
                ApiStatus.INVALID_PERIOD,
                f"horizon_bucket {request.horizon_bucket_ms} ms gives more than {self.max_records} horizon buckets;"
                " ask a larger one or a shorter range",
            )
        found = rendered.count > 0
        self._known(found, forecast_table, request.site_id, request.id, f"{forecast.name} forecast")
        self._known(found, production_table, request.site_id, request.equipment_id, f"{equipment.name} record")
        return records_pb2.Records(results_json=rendered.results, count=rendered.count)

    def _query(self, sql: str, parameters: dict[str, int | None]) -> bytes:
        with store_query(), self.store.client() as client:
            result: bytes = client.raw_query(sql, parameters, fmt=JSON_ARRAY_FORMAT)
            return result

    def _known(self, found: bool, table: str, site_id: int, record_id: int, what: str) -> None:
        """1107 when a read found nothing and nothing was ever stored under its id."""
        if found:
            self.known_ids.add(table, site_id, record_id)
            return
        with store_query(), self.store.client() as client:
            self.known_ids.check(client, table, site_id, record_id, what)
