"""Rollups of production records: their upkeep after each insert, and the reads they serve.

A rollup cell (site, id, resolution, bucket) holds per attribute min, max,
sum and count of the cell's records, and the value of its record at the
cell's start (schema.rollup_table). Each insert marks
the spans it touched pending (rollup_pending) before its PUTs are
acknowledged; a Maintainer thread then recomputes exactly those spans' cells
from what is stored: minute cells from the raw records, hour cells from minute
cells, day cells from hour cells, one INSERT ... SELECT each. A read takes
cells only before the first pending minute of its (site, id), and raw records
from there on, so a replaced or late record is counted as soon as its PUT is
acknowledged (services/lib/reads/plan.py: which reads take cells at all).

On a single node neither the cells nor the marks are fsynced: a mark costs a
PUT no sync of its own. What a power loss takes from the page cache is marked
again when the next maintainer starts: the spans of every raw part written in
the RECENT_PARTS_S before the newest one (raw parts are synced before their
PUTs are acknowledged).
"""

from __future__ import annotations

import logging
import secrets
import threading
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np

from services.lib.background import lower_priority
from services.lib.reads.window import Window
from services.lib.rpc.metrics import ROLLUP_SPANS_RECOMPUTED
from services.lib.store.engine import Store
from services.lib.store.retention import Retention
from services.lib.store.schema import ROLLUP_RESOLUTIONS_MS
from storecast.catalog import RecordType

if TYPE_CHECKING:
    from services.lib.reads.pending import PendingSpans

log = logging.getLogger("storecast.rollup")

MINUTE, HOUR, DAY = ROLLUP_RESOLUTIONS_MS
# The least time between two maintainer rounds (Maintainer).
ROUND_INTERVAL_S = 2.0
# Longer than the kernel keeps dirty pages (30 s by default) before writing them back.
RECENT_PARTS_S = 600
# The `tbl` of a pending row that says no cell can be trusted: an ingest ran with rollups off
# (STORECAST_ROLLUPS=0), and its inserts marked nothing. Reads take no cell while it is there;
# the next maintainer marks every stored span pending, then deletes it.
EVERY_TABLE = "*"


@dataclass(frozen=True, slots=True)
class Span:
    """The records of one (site, id) an insert touched: timestamps in [first, last]."""

    site_id: int
    id: int
    first: int
    last: int

    def cells(self, resolution: int) -> tuple[int, int]:
        """[lo, hi[ of the cells of this resolution the span touches."""
        return self.first // resolution * resolution, self.last // resolution * resolution + resolution


def touched_spans(
    site_ids: Sequence[int] | np.ndarray, ids: Sequence[int] | np.ndarray, timestamps: Sequence[int] | np.ndarray
) -> list[Span]:
    """Per (site, id) of an inserted block, its first and last timestamp."""
    keys = (np.asarray(site_ids, dtype=np.uint64) << np.uint64(32)) | np.asarray(ids, dtype=np.uint64)
    stamps = np.asarray(timestamps, dtype=np.int64)
    unique, owners = np.unique(keys, return_inverse=True)
    first = np.full(len(unique), np.iinfo(np.int64).max)
    last = np.full(len(unique), np.iinfo(np.int64).min)
    np.minimum.at(first, owners, stamps)
    np.maximum.at(last, owners, stamps)
    return [
        Span(int(key >> np.uint64(32)), int(key & np.uint64(0xFFFFFFFF)), int(lo), int(hi))
        for key, lo, hi in zip(unique, first, last)
    ]


def kept_spans(spans: Sequence[Span], horizon: int) -> list[Span]:
    """The spans as far as their minutes are whole after the raw retention's horizon.

    Minute cells are recomputed from raw records, so a minute that records may
    have expired from (TTL) keeps the cell it has; coarser cells are made of
    minute cells, so they stay exact either side of the horizon. Records older
    than the horizon update no cell: TTL drops them.
    """
    first_whole = -(-horizon // MINUTE) * MINUTE
    return [replace(span, first=max(span.first, first_whole)) for span in spans if span.last >= first_whole]


def _within(spans: Sequence[Span], column: str, resolution: int, outside: int | None = None) -> str:
    """Rows of the spans' ids whose `column` is in their cells of `resolution`, but not in
    their cells of the finer `outside` resolution (those are recomputed, not read)."""
    conditions = []
    for span in spans:
        lo, hi = span.cells(resolution)
        condition = f"(site_id = {span.site_id} AND id = {span.id} AND {column} >= {lo} AND {column} < {hi}"
        if outside is not None:
            inner_lo, inner_hi = span.cells(outside)
            condition += f" AND NOT ({column} >= {inner_lo} AND {column} < {inner_hi})"
        conditions.append(condition + ")")
    return "(" + " OR ".join(conditions) + ")"


CELLS = "records, mins, maxs, sums, counts, firsts"


def _from_records(record_type: RecordType, bucket: str) -> str:
    """SELECT items of cells from records: an aggregate per attribute, gathered into the
    cells' arrays. Over a round's records this is about twice as fast as -ForEach over
    an array per record; the rows repay the analysis of the extra expressions."""

    def gathered(aggregate: str) -> str:
        return "[" + ", ".join(aggregate.format(f"`{a.name}`") for a in record_type.attributes) + "]"

    return (
        f"site_id, id, {bucket} AS bucket, toUInt32(count()) AS records, {gathered('min({})')} AS mins,"
        f" {gathered('max({})')} AS maxs, {gathered('toFloat64(ifNull(sum({}), 0))')} AS sums,"
        f" {gathered('toUInt32(count({}))')} AS counts, {gathered('anyIf({}, timestamp = bucket)')} AS firsts"
    )


def _from_cells(resolution: int, finer_cells: str) -> str:
    """Coarser cells from finer ones. The aggregates are named apart from the columns
    they read (c_*), then renamed: an alias equal to a column would be read as itself.
    A cell's firsts are those of the finer cell at its start, all null without one
    (no record there), and [] (unknown) when that cell's are."""
    no_record = "arrayMap(x -> CAST(NULL, 'Nullable(Float64)'), any(mins))"
    grouped = (
        f"SELECT site_id, id, intDiv(bucket, {resolution}) * {resolution} AS c_bucket, sum(records) AS c_records,"
        " minForEach(mins) AS c_mins, maxForEach(maxs) AS c_maxs, sumForEach(sums) AS c_sums, sumForEach(counts) AS c_counts,"
        f" if(countIf(bucket = c_bucket) = 0, {no_record}, anyIf(firsts, bucket = c_bucket)) AS c_firsts"
        f" FROM ({finer_cells}) GROUP BY site_id, id, c_bucket"
    )
    return (
        "SELECT site_id, id, c_bucket AS bucket, toUInt32(c_records) AS records, c_mins AS mins, c_maxs AS maxs,"
        f" c_sums AS sums, CAST(c_counts AS Array(UInt32)) AS counts, c_firsts AS firsts FROM ({grouped})"
    )


def upkeep_sql(raw_table: str, rollup_table: str, record_type: RecordType, spans: Sequence[Span]) -> list[str]:
    """The INSERT ... SELECTs recomputing every cell the spans touch, to run in order: minute
    cells from the records, then hour cells from the minute cells as now stored, then day
    cells from the hour cells. Three statements rather than one nesting the finer levels in
    the coarser: the engine's analysis of a query grows faster than its size."""
    insert = f"INSERT INTO {rollup_table} (site_id, id, resolution, bucket, {CELLS})"
    # FINAL: the newest version of each record, as keys.newest_versions gives (keys are unique within a
    # part, and a newer insert has a higher block number), for about half its cost here.
    minutes = (
        f"SELECT {_from_records(record_type, f'intDiv(timestamp, {MINUTE}) * {MINUTE}')} FROM {raw_table} FINAL"
        f" WHERE {_within(spans, 'timestamp', MINUTE)} GROUP BY site_id, id, bucket"
    )
    statements = [f"{insert} SELECT site_id, id, {MINUTE}, bucket, {CELLS} FROM ({minutes})"]
    for resolution, finer in ((HOUR, MINUTE), (DAY, HOUR)):
        finer_cells = (
            f"SELECT site_id, id, bucket, {CELLS} FROM {rollup_table} FINAL"
            f" WHERE resolution = {finer} AND {_within(spans, 'bucket', resolution)}"
        )
        statements.append(
            f"{insert} SELECT site_id, id, {resolution}, bucket, {CELLS} FROM ({_from_cells(resolution, finer_cells)})"
        )
    return statements


def new_token() -> int:
    """A token for the marks of one insert: a maintainer round deletes exactly the tokens it read."""
    return secrets.randbits(63)


def pending_sql(pending_table: str, raw_table: str, spans: Sequence[Span], token: int) -> str:
    """The INSERT that marks the spans' cells pending under `token`."""
    rows = ", ".join(f"('{raw_table}', {s.site_id}, {s.id}, {token}, {s.first}, {s.last})" for s in spans)
    return f"INSERT INTO {pending_table} (tbl, site_id, id, token, first, last) VALUES {rows}"


def remark_sql(pending_table: str, raw_tables: Sequence[str], *, everything: bool = False) -> str:
    """The INSERT that marks pending again the spans of every part of the raw tables
    written in the RECENT_PARTS_S before each table's newest part (`everything`: of all parts)."""
    token = new_token()
    selects = []
    for raw_table in raw_tables:
        database, name = raw_table.split(".", 1)
        parts = f"system.parts WHERE database = '{database}' AND table = '{name}' AND active"
        newest = f"(SELECT max(modification_time) FROM {parts})"
        recent = f" WHERE _part IN (SELECT name FROM {parts} AND modification_time >= {newest} - {RECENT_PARTS_S})"
        selects.append(
            f"SELECT '{raw_table}', site_id, id, {token}, min(timestamp), max(timestamp) FROM {raw_table}"
            f"{'' if everything else recent} GROUP BY site_id, id"
        )
    return f"INSERT INTO {pending_table} (tbl, site_id, id, token, first, last) {' UNION ALL '.join(selects)}"


def mark_rollups_stale(store: Store, pending_table: str) -> None:
    """Says, before an ingest with rollups off stores anything, that no cell can be trusted."""
    with store.client() as client:
        if not client.query(f"SELECT count() FROM {pending_table} WHERE tbl = '{EVERY_TABLE}'").result_rows[0][0]:
            client.command(
                f"INSERT INTO {pending_table} (tbl, site_id, id, token, first, last)"
                f" VALUES ('{EVERY_TABLE}', 0, 0, 0, 0, {np.iinfo(np.int64).max})"
            )


@dataclass(frozen=True, slots=True)
class RollupOf:
    """Where the cells of one raw production table are kept, and its attributes."""

    rollup_table: str
    record_type: RecordType


class Maintainer:
    """Recomputes the cells of pending spans, coalescing every insert since its last round.

    A round runs when `notify` is called, at most every `interval_s`: the longer,
    the more inserts share a round's fixed cost (about 100 ms of engine queries),
    and the longer reads of the newest minutes take raw records. The pending table outlives the process: spans left by a crash
    are recomputed by the next maintainer, and one of any ingest replica may do
    another's: a span is deleted only after a recompute that began after it was
    written, so a cell is never trusted while a change to it is unaccounted for.
    """

    def __init__(
        self,
        store: Store,
        pending_table: str,
        tables: Mapping[str, RollupOf],
        retention: Retention,
        interval_s: float = ROUND_INTERVAL_S,
        marks: PendingSpans | None = None,
    ) -> None:
        self._store = store
        # The marks as this process holds them (services/lib/reads/pending.py), on the embedded store.
        self._marks = marks
        self._retention = retention
        # A lightweight DELETE goes to the table that stores the rows: on a cluster, every host's local table.
        cluster = store.cluster
        self._stored_pending = pending_table if cluster is None else f"{pending_table}_local ON CLUSTER '{cluster}'"
        self._pending = pending_table
        self._tables = tables
        self._interval_s = interval_s
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._remarked = False
        try:
            self._remark_recent()
        except Exception:
            log.warning("the store cannot mark the recent parts' spans pending yet; the maintainer's rounds retry it")
        self._thread = threading.Thread(target=self._run, name="rollup-maintainer", daemon=True)
        self._thread.start()
        store.before_close(self.stop)

    def notify(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        """One last round for what was marked since the last, then no more: the engine must
        not be called at exit. What is still pending then waits for the next start."""
        self._stopping.set()
        self._wake.set()
        self._thread.join(timeout=30)

    def _remark_recent(self) -> None:
        """Before any read trusts a cell: what a power loss may have taken is pending again,
        and everything if an ingest ran with rollups off."""
        with self._store.client() as client:
            stale = client.query(f"SELECT count() FROM {self._pending} WHERE tbl = '{EVERY_TABLE}'").result_rows[0][0]
            # A cluster's marks are synced (schema.Table.synced): no power loss takes them.
            if stale or self._store.cluster is None:
                client.command(remark_sql(self._pending, list(self._tables), everything=bool(stale)))
            if stale:
                client.command(f"DELETE FROM {self._stored_pending} WHERE tbl = '{EVERY_TABLE}'")
            if self._marks is not None:
                self._marks.load(client.query(f"SELECT tbl, site_id, id, token, first, last FROM {self._pending}").result_rows)
                if stale:
                    self._marks.everything_done()
        self._remarked = True

    def _run(self) -> None:
        lower_priority()
        while True:
            self._wake.wait()
            self._wake.clear()
            last = self._stopping.is_set()  # so the last round starts after the stop and sees every mark
            self._round()
            if last:
                return
            # Rounds at most every interval: the inserts meanwhile share the next one's fixed cost.
            self._stopping.wait(self._interval_s)

    def _round(self) -> None:
        try:
            self.catch_up()
        except Exception:
            log.exception("rollup upkeep failed; its spans stay pending and are retried")

    def catch_up(self) -> int:
        """One round: every pending span's cells recomputed, those spans deleted; how many spans."""
        if not self._remarked:
            self._remark_recent()
        with self._store.client() as client:
            spans_sql = f"SELECT tbl, site_id, id, min(first), max(last), groupArray(token) FROM {self._pending}"
            rows = client.query(f"{spans_sql} WHERE tbl != '{EVERY_TABLE}' GROUP BY tbl, site_id, id").result_rows
            work: dict[str, tuple[list[Span], list[int]]] = defaultdict(lambda: ([], []))
            for table, site_id, record_id, first, last, tokens in rows:
                spans, all_tokens = work[table]
                spans.append(Span(site_id, record_id, first, last))
                all_tokens.extend(tokens)
            for table, (spans, tokens) in work.items():
                rollup = self._tables.get(table)
                # Records may have expired since they were marked: their minutes keep their cells.
                kept = (
                    [] if rollup is None else kept_spans(spans, self._retention.horizon_ms("production", rollup.record_type.name))
                )
                if rollup is not None and kept:
                    for statement in upkeep_sql(table, rollup.rollup_table, rollup.record_type, kept):
                        client.command(statement)
                done = ", ".join(map(str, tokens))
                # A patch part (schema.Table.patched_deletes): gone for every read at once.
                client.command(
                    f"DELETE FROM {self._stored_pending} WHERE tbl = '{table}' AND token IN ({done})"
                    " SETTINGS lightweight_delete_mode = 'lightweight_update'"
                )
                if self._marks is not None:
                    self._marks.discard(tokens)
                ROLLUP_SPANS_RECOMPUTED.labels(table.split(".", 1)[1]).inc(len(tokens))
            if work and self._store.cluster is None and not self._wake.is_set():
                # Every read that may take cells reads the marks first, and a read of them applies each
                # patch part left by the deletes: 4-5 ms on chDB after a few rounds, 2 ms once merged. Only
                # once the writes pause (no insert woke the maintainer during this round): under steady
                # PUTs new marks come every round, and recent reads are answered from memory anyway.
                client.command(f"OPTIMIZE TABLE {self._pending} FINAL")
        return len(rows)


def resolution_for(window: Window) -> int | None:
    """The coarsest rollup resolution whose cells answer the window's aggregation: one that
    divides its period, for an aggregation the cells can answer."""
    if window.aggregation is None or window.aggregation.cells is None or window.period_ms is None:
        return None
    fitting = [resolution for resolution in ROLLUP_RESOLUTIONS_MS if window.period_ms % resolution == 0]
    return max(fitting) if fitting else None
