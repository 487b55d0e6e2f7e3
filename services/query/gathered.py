"""Small raw reads of one table that wait for the engine together, answered by one query.

The engine's fixed cost per query (its analysis, its pipeline: about 7-12 ms
here, whatever the rows) is most of a read of a few records that memory
cannot answer: day-old records a fleet of clients looks up, one each. As the
group commit shares one insert among concurrent PUTs, reads of one table
share one query: a read that finds fewer than `max_queries` of them under way
goes at once (alone if nobody waits, so a lone client never waits for
company); those that arrive meanwhile wait, and the next to go takes them
all, up to `max_reads`.

One query for several reads selects each read's range by its key, numbers
every row by the first read whose range holds it (`arrayFirstIndex` over
constant arrays: one expression, whatever the count), keeps the newest
version of each (read, timestamp) and at most limit + 1 rows per read, and
renders each record as a single read does (services/query/sql.py): each read
gets the very bytes it would get alone. Reads whose ranges of one series
overlap go in different queries, as a row belongs to one read only; reads
asking the same thing share their rows. A read that goes alone runs its own
query (production_sql), which costs 1.5-3 ms less than the gathered form of
one read.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

from clickhouse_connect.driver.client import Client

from services.lib.reads.render import JSON_ARRAY_FORMAT, RenderedArray, array_of, json_object, limit_array
from services.lib.reads.window import Window
from services.lib.rpc.metrics import READS_PER_QUERY, store_query
from services.lib.store.engine import Store
from services.query.sql import production_members, production_sql
from storecast.catalog import RecordType

# A read spanning at most this is gathered: at one record a second, 3,600 records at most.
GATHERED_SPAN_MS = 3_600_000


@dataclass(frozen=True, slots=True)
class WantedRange:
    """A raw read of one series over [start, end[ (start at or past the retention's horizon), `limit` + 1 rows at most."""

    site_id: int
    id: int
    start: int
    end: int
    limit: int

    def meets(self, other: WantedRange) -> bool:
        return (self.site_id, self.id) == (other.site_id, other.id) and self.start < other.end and other.start < self.end


@dataclass(slots=True)
class _Waiting:
    wanted: WantedRange
    answer: RenderedArray | None = None
    error: BaseException | None = None
    taken: bool = False  # in a batch under way
    done: bool = False


@dataclass(slots=True)
class _Table:
    waiting: list[_Waiting] = field(default_factory=list)
    under_way: int = 0


class GatheredReads:
    """The gathered reads of every table of one store; `read` blocks (call it on a worker thread)."""

    def __init__(self, store: Store, *, max_queries: int = 2, max_reads: int = 32) -> None:
        self._store = store
        self._max_queries = max_queries
        self._max_reads = max_reads
        self._changed = threading.Condition()
        self._tables: dict[str, _Table] = defaultdict(_Table)

    def read(self, table: str, equipment: RecordType, wanted: WantedRange) -> RenderedArray:
        """What production_sql's JSON array of `wanted`'s records gives, cut by limit_array."""
        mine = _Waiting(wanted)
        with self._changed:
            queue = self._tables[table]
            queue.waiting.append(mine)
            batch = self._turn(queue, mine)
        if batch is not None:
            try:
                self._answer(table, equipment, batch)
            finally:
                with self._changed:
                    queue.under_way -= 1
                    self._changed.notify_all()
        if mine.error is not None:
            raise mine.error
        if mine.answer is None:
            raise RuntimeError("a gathered read was left unanswered")
        return mine.answer

    def _turn(self, queue: _Table, mine: _Waiting) -> list[_Waiting] | None:
        """Waits (holding the condition) until `mine` is answered (None) or may go with a batch of its own."""
        while not mine.done:
            if not mine.taken and queue.under_way < self._max_queries:
                queue.under_way += 1
                return self._take(queue, mine)
            self._changed.wait()
        return None

    def _take(self, queue: _Table, first: _Waiting) -> list[_Waiting]:
        """`first` and what waits with it, oldest first, as long as no two ranges of a series meet
        (unless they are the same range), up to max_reads distinct ranges."""
        taken, distinct = [first], {first.wanted}
        for waiting in queue.waiting:
            if len(distinct) >= self._max_reads:
                break
            if waiting is first or waiting.wanted.limit != first.wanted.limit:
                continue
            if waiting.wanted not in distinct and any(waiting.wanted.meets(other) for other in distinct):
                continue
            taken.append(waiting)
            distinct.add(waiting.wanted)
        for waiting in taken:
            waiting.taken = True
        chosen = {id(waiting) for waiting in taken}
        queue.waiting = [waiting for waiting in queue.waiting if id(waiting) not in chosen]
        return taken

    def _answer(self, table: str, equipment: RecordType, batch: list[_Waiting]) -> None:
        ranges = list(dict.fromkeys(waiting.wanted for waiting in batch))
        outcome: dict[WantedRange, RenderedArray | BaseException]
        try:
            READS_PER_QUERY.observe(len(batch))
            with store_query(), self._store.client() as client:
                if len(ranges) == 1:  # a read's own query: 1.5-3 ms cheaper than the gathered form of one
                    outcome = {ranges[0]: _alone(client, table, equipment, ranges[0])}
                else:
                    by_range = _split(client.raw_query(gathered_sql(table, equipment, ranges), fmt="TabSeparated"), len(ranges))
                    outcome = {wanted: array_of(rows, wanted.limit) for wanted, rows in zip(ranges, by_range)}
        except BaseException as error:  # every read of the query fails as it would alone
            outcome = dict.fromkeys(ranges, error)
        with self._changed:
            for waiting in batch:
                result = outcome[waiting.wanted]
                if isinstance(result, BaseException):
                    waiting.error = result
                else:
                    waiting.answer = result
                waiting.done = True


def _alone(client: Client, table: str, equipment: RecordType, wanted: WantedRange) -> RenderedArray:
    sql = production_sql(table, equipment, Window(wanted.start, wanted.end, None, None), wanted.limit + 1)
    # Its start is at or past the retention's horizon already.
    parameters = {"site_id": wanted.site_id, "id": wanted.id, "start": wanted.start, "end": wanted.end, "horizon": wanted.start}
    return limit_array(client.raw_query(sql, parameters, fmt=JSON_ARRAY_FORMAT), wanted.limit)


def gathered_sql(table: str, equipment: RecordType, ranges: Sequence[WantedRange]) -> str:
    """Rows (n, rendered record): each range's newest records ascending, limit + 1 at most, n its 1-based index."""
    members = production_members(equipment, Window(None, None, None, None))
    sites = ", ".join(str(r.site_id) for r in ranges)
    ids = ", ".join(str(r.id) for r in ranges)
    starts = ", ".join(str(r.start) for r in ranges)
    ends = ", ".join(str(r.end) for r in ranges)
    # The key ranges as conditions of their own, so the primary key's index reads only their granules.
    keyed = " OR ".join(
        f"(site_id = {r.site_id} AND id = {r.id} AND timestamp >= {r.start} AND timestamp < {r.end})" for r in ranges
    )
    owner = (
        "arrayFirstIndex((s, i, a, b) -> site_id = s AND id = i AND timestamp >= a AND timestamp < b,"
        f" [{sites}], [{ids}], [{starts}], [{ends}])"
    )
    newest = (
        f"SELECT {owner} AS n, {json_object(members)} AS record FROM {table} WHERE {keyed}"
        " ORDER BY n, timestamp, _block_number DESC, _part_offset DESC LIMIT 1 BY n, timestamp"
    )
    return f"SELECT n, record FROM ({newest}) LIMIT {ranges[0].limit + 1} BY n"


def _split(lines: bytes, count: int) -> list[list[bytes]]:
    """The rendered records of each range, in order, from (n, record) lines."""
    rows: list[list[bytes]] = [[] for _ in range(count)]
    for line in lines.splitlines():
        n, _, record = line.partition(b"\t")
        rows[int(n) - 1].append(record)
    return rows
