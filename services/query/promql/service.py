"""The query service's PromQL methods: PromQuery (instant and range queries) and PromSeries.

Checked as Prometheus's HTTP API checks them, so that a gRPC caller gets the
errors a Prometheus client would (the gateway only carries them over): a range
of at most 11,000 steps, a positive step, an end not before the start.
"""

from __future__ import annotations

import numpy as np
import promql_parser

from services.query.promql.errors import bad_data
from services.query.promql.evaluate import MAX_POINTS, Evaluation, RangeSamples, Scalar, Vector
from services.query.promql.select import Labels, Reader, Scope, Selector, series_labels
from storecast.v1 import query_pb2


def scope_of(sites: query_pb2.SiteScope) -> Scope:
    return Scope(None if sites.every_site else frozenset(sites.site_ids))


def parse(text: str) -> promql_parser.Expr:
    try:
        return promql_parser.parse(text)
    except ValueError as error:
        raise bad_data(f'invalid parameter "query": {error}') from None


def steps_of(request: query_pb2.PromQueryRequest) -> np.ndarray:
    if request.step_ms == 0:
        return np.array([request.end_ms], dtype=np.int64)
    if request.step_ms < 0:
        raise bad_data("zero or negative query resolution step widths are not accepted. Try a positive integer")
    if request.end_ms < request.start_ms:
        raise bad_data("end timestamp must not be before start time")
    if (request.end_ms - request.start_ms) // request.step_ms > MAX_POINTS:
        raise bad_data(
            "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)"
        )
    return np.arange(request.start_ms, request.end_ms + 1, request.step_ms, dtype=np.int64)


def query(reader: Reader, request: query_pb2.PromQueryRequest) -> query_pb2.PromQueryReply:
    expression = parse(request.query)
    steps = steps_of(request)
    value = Evaluation(reader, steps).evaluate(expression)
    instant = request.step_ms == 0
    if isinstance(value, Scalar):
        points = _series((), steps, value.values)
        return query_pb2.PromQueryReply(result_type=query_pb2.PROM_SCALAR if instant else query_pb2.PROM_MATRIX, series=[points])
    if isinstance(value, RangeSamples):
        series = [_series(s.labels, s.timestamps, s.values) for s in sorted(value.series, key=lambda s: s.labels)]
        return query_pb2.PromQueryReply(result_type=query_pb2.PROM_MATRIX, series=series)
    return query_pb2.PromQueryReply(
        result_type=query_pb2.PROM_VECTOR if instant else query_pb2.PROM_MATRIX, series=_vector_series(value, steps)
    )


def _vector_series(vector: Vector, steps: np.ndarray) -> list[query_pb2.PromSeries]:
    """Each label set's present points, label sets sorted (rows of one label set never overlap: evaluate._distinct)."""
    rows: dict[Labels, list[int]] = {}
    for row, labels in enumerate(vector.labels):
        rows.setdefault(labels, []).append(row)
    series = []
    for labels in sorted(rows):
        same = rows[labels]
        present = vector.present[same].any(axis=0)
        if not present.any():
            continue
        values = np.where(vector.present[same], vector.values[same], 0.0).sum(axis=0) if len(same) > 1 else vector.values[same[0]]
        series.append(_series(labels, steps[present], values[present]))
    return series


def _series(labels: Labels, timestamps: np.ndarray, values: np.ndarray) -> query_pb2.PromSeries:
    return query_pb2.PromSeries(
        labels=[query_pb2.PromLabel(name=name, value=value) for name, value in labels],
        timestamps=timestamps.tolist(),
        values=values.tolist(),
    )


def series(reader: Reader, request: query_pb2.PromSeriesRequest) -> query_pb2.PromSeriesReply:
    selectors = []
    for text in request.match or ['{__name__=~".+"}']:
        expression = parse(text)
        if not isinstance(expression, promql_parser.VectorSelector):
            raise bad_data(f'invalid parameter "match[]": {text!r} is not a series selector')
        selectors.append(Selector.of(expression))
    start = request.start_ms if request.HasField("start_ms") else None
    end = request.end_ms if request.HasField("end_ms") else None
    found: set[Labels] = set()
    for selector in selectors:
        for metric, site_id, record_id in reader.series(selector, start, end):
            found.add(series_labels(metric, site_id, record_id))
    ordered = sorted(found)
    if request.limit:
        ordered = ordered[: request.limit]
    return query_pb2.PromSeriesReply(series=[_series(labels, np.array([], np.int64), np.array([])) for labels in ordered])
