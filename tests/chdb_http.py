"""A stand-in ClickHouse server for tests: the embedded engine (chDB) behind ClickHouse's
HTTP interface, as far as clickhouse-connect 1.12 uses it, so that several storecast
processes can share one store.

- The query comes from the URL (`query`), the body, or both (URL first), or from the
  fields of a multipart form (clickhouse-connect's form encoding of long parameters).
  `param_*` are bound as query parameters.
- Every other parameter that is not one of the HTTP interface's own is a setting of
  that request. The settings reach the engine through the session: each distinct set
  of settings (and `database`) has its own chDB connections, on which they were SET
  once when the connection was opened, so a request pays nothing for them.
- `INSERT … FORMAT <fmt>` followed by data (in the body, after the query, as
  ClickHouse reads it) streams the data into the engine.
- Request bodies may carry a Content-Encoding (clickhouse-connect compresses inserts
  with lz4 frames). Answers are compressed in the first encoding the request accepts
  unless it sets `enable_http_compression=0`: that setting is on by default, as in
  ClickHouse since 24.x, and clickhouse-connect then sends only Accept-Encoding.
  ClickHouse's own compressed-block framing (`compress=1`, `decompress=1`) is refused:
  clickhouse-connect's HTTP client never asks for it, and its CityHash128 checksums are
  not at hand.
- Answers are in the format the query names, else `default_format`, else
  TabSeparated, with the X-ClickHouse-* headers clickhouse-connect reads (format,
  timezone, summary, query id); errors carry the engine's code in
  X-ClickHouse-Exception-Code.
- Requests run concurrently (a thread each); a connection serves one request at a time.

Sessions (`session_id`) keep no state: every request stands alone (storecast opens
none). clickhouse-connect's `client_protocol_version` probe looks for the block
headers a server writes for that protocol; chDB writes none, so the client stays on
protocol 0, which needs none.

    python -m tests.chdb_http PORT DATA_DIR

Killing it is "the store is down" (connection refused); starting it again on the
same port and directory is "the store is back", with the schema it kept.
"""

from __future__ import annotations

import email.parser
import email.policy
import gzip
import http.server
import json
import re
import socket
import sys
import threading
import urllib.parse
import uuid
import zlib
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import chdb
import lz4.frame
from backports import zstd
from chdb.state.sqlitelike import Connection

# ClickHouse's own compressed-block framing of the response and of the request body.
_FRAMED_COMPRESSION = ("compress", "decompress")
# Parameters of the HTTP interface rather than settings of the query: the ones read
# here, and the ones only a real server's HTTP handler has a use for.
_PROTOCOL_PARAMETERS = frozenset(
    {
        "query",
        "database",
        "default_format",
        "query_id",
        "enable_http_compression",
        "http_zlib_compression_level",
        "user",
        "password",
        "quota_key",
        "role",
        "session_id",
        "session_timeout",
        "session_check",
        "close_session",
        "stacktrace",
        "buffer_size",
        "wait_end_of_query",
        "client_protocol_version",
        "send_progress_in_http_headers",
        "http_headers_progress_interval_ms",
        "cancel_http_readonly_queries_on_client_close",
        *_FRAMED_COMPRESSION,
    }
)
_SETTING_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def lz4_frames(body: bytes) -> bytes:
    """A body of lz4 frames: clickhouse-connect compresses each block of an insert into one."""
    parts = []
    while body:
        frame = lz4.frame.LZ4FrameDecompressor()
        parts.append(frame.decompress(body))
        body = frame.unused_data
    return b"".join(parts)


_DECODERS: dict[str, Callable[[bytes], bytes]] = {
    "lz4": lz4_frames,
    "gzip": gzip.decompress,
    "deflate": zlib.decompress,
    "zstd": zstd.decompress,
}
_ENCODERS: dict[str, Callable[[bytes], bytes]] = {
    "lz4": lz4.frame.compress,
    "zstd": zstd.compress,
    "gzip": lambda data: gzip.compress(data, compresslevel=3),
    "deflate": lambda data: zlib.compress(data, 3),
}

# An INSERT whose data follows its FORMAT clause; the header is one line, its literals quoted.
_INSERT_WITH_DATA = re.compile(rb"\A\s*(INSERT\s+INTO\s+(?:[^'\n;]|'[^'\n]*')*?)\s+FORMAT\s+(\w+)", re.IGNORECASE)
_TRAILING_FORMAT = re.compile(r"\bFORMAT\s+(\w+)\s*;?\s*\Z", re.IGNORECASE)
# Statements that produce a result, which ClickHouse announces with X-ClickHouse-Format even when empty.
_RESULT_STATEMENT = re.compile(r"\A[\s(]*(SELECT|WITH|SHOW|DESCRIBE|DESC|EXISTS|EXPLAIN|CHECK)\b", re.IGNORECASE)
_ERROR_CODE = re.compile(r"Code: (\d+)\.")
_WHITESPACE = b" \t\n\v\f\r"


class ClickHouseError(Exception):
    """An error as ClickHouse reports it: a code, and a message naming it."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


def engine_error(error: Exception) -> ClickHouseError:
    message = str(error)
    code = _ERROR_CODE.search(message)
    return ClickHouseError(int(code.group(1)) if code else 1001, message[message.find("Code: ") :] if code else message)


def not_implemented(what: str) -> ClickHouseError:
    return ClickHouseError(48, f"Code: 48. DB::Exception: {what} is not implemented by the stand-in. (NOT_IMPLEMENTED)")


def quoted(value: str) -> str:
    """A string literal; the engine converts it to the setting's type."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


_SessionKey = tuple[str | None, tuple[tuple[str, str], ...]]


class Engine:
    """The chDB engine of one directory, through connections kept per database and settings."""

    def __init__(self, directory: str) -> None:
        self._directory = directory
        self._idle: defaultdict[_SessionKey, list[Connection]] = defaultdict(list)
        self._lock = threading.Lock()
        self._opening = threading.Lock()
        with self.connection(None, {}) as first:
            line = first.query("SELECT timezone(), getSetting('enable_http_compression')", "TabSeparatedRaw").bytes()
        self.timezone, compression = line.decode().split()
        self.http_compression = compression in ("1", "true")

    @contextmanager
    def connection(self, database: str | None, settings: dict[str, str]) -> Iterator[Connection]:
        """A connection for this request alone, whose session has `database` and `settings`."""
        key: _SessionKey = (database, tuple(sorted(settings.items())))
        with self._lock:
            idle = self._idle[key]
            connection = idle.pop() if idle else None
        if connection is None:
            connection = self._open(database, settings)
        try:
            yield connection
        finally:
            with self._lock:
                self._idle[key].append(connection)

    def _open(self, database: str | None, settings: dict[str, str]) -> Connection:
        for name in settings:
            if not _SETTING_NAME.fullmatch(name):
                raise ClickHouseError(115, f"Code: 115. DB::Exception: Unknown setting '{name}'. (UNKNOWN_SETTING)")
        with self._opening:
            connection: Connection = chdb.connect(self._directory)  # type: ignore[no-untyped-call]
        try:
            if database is not None:
                connection.query(f"USE `{database.replace('`', '')}`")
            for name, value in settings.items():
                connection.query(f"SET {name} = {quoted(value)}")
        except Exception as error:
            connection.close()
            raise engine_error(error) from error
        return connection


@dataclass
class Answer:
    status: int
    body: bytes
    headers: dict[str, str]


def run(engine: Engine, params: dict[str, str], body: bytes) -> Answer:
    """One request of the HTTP interface: its parameters (URL and form) and its decoded body."""
    for name in _FRAMED_COMPRESSION:
        if params.get(name, "0") not in ("0", ""):
            raise not_implemented(f"ClickHouse's compressed-block framing ({name}=1)")
    bound = {name[6:]: value for name, value in params.items() if name.startswith("param_")}
    settings = {
        name: value for name, value in params.items() if name not in _PROTOCOL_PARAMETERS and not name.startswith("param_")
    }
    text = (params["query"].encode() + b"\n" + body) if "query" in params else body
    if not text.strip():
        raise ClickHouseError(62, "Code: 62. DB::Exception: Empty query. (SYNTAX_ERROR)")
    headers = {
        "X-ClickHouse-Query-Id": params.get("query_id") or str(uuid.uuid4()),
        "X-ClickHouse-Timezone": settings.get("session_timezone") or engine.timezone,
        "X-ClickHouse-Server-Display-Name": socket.gethostname(),
    }
    insert = _INSERT_WITH_DATA.match(text)
    with engine.connection(params.get("database"), settings) as connection:
        try:
            if insert is not None:
                return _insert(connection, insert, text, headers)
            return _query(connection, text.decode(), bound, params.get("default_format") or "TabSeparated", headers)
        except RuntimeError as error:  # chDB's errors, ChdbError among them
            raise engine_error(error) from error


def _insert(connection: Connection, insert: re.Match[bytes], text: bytes, headers: dict[str, str]) -> Answer:
    # As ClickHouse reads it: the data starts after the first newline following the
    # format's name, or after the whitespace there if it holds no newline.
    rest = text[insert.end() :]
    blank = len(rest) - len(rest.lstrip(_WHITESPACE))
    newline = rest.find(b"\n", 0, blank)
    data = rest[newline + 1 :] if newline >= 0 else rest[blank:]
    with connection.send_insert(insert.group(1).decode(), insert.group(2).decode()) as inserter:
        if data:
            inserter.append(data)
        result = inserter.finish()
    headers["X-ClickHouse-Summary"] = _summary(0, 0, result.rows_written, result.bytes_written, 0, result.elapsed)
    return Answer(200, b"", headers)


def _query(connection: Connection, sql: str, bound: dict[str, str], default_format: str, headers: dict[str, str]) -> Answer:
    named = _TRAILING_FORMAT.search(sql)
    output_format = named.group(1) if named else default_format
    result = connection.query(sql, output_format, params=bound)
    data: bytes = result.bytes() or b""
    if named or _RESULT_STATEMENT.match(sql):
        headers["X-ClickHouse-Format"] = output_format
    headers["X-ClickHouse-Summary"] = _summary(
        result.rows_read(), result.bytes_read(), result.rows_written(), result.bytes_written(), len(data), result.elapsed()
    )
    return Answer(200, data, headers)


def _summary(read_rows: int, read_bytes: int, written_rows: int, written_bytes: int, result_bytes: int, elapsed_s: float) -> str:
    figures = {
        "read_rows": read_rows,
        "read_bytes": read_bytes,
        "written_rows": written_rows,
        "written_bytes": written_bytes,
        "total_rows_to_read": read_rows,
        "result_bytes": result_bytes,
        "elapsed_ns": int(elapsed_s * 1e9),
    }
    return json.dumps({name: str(value) for name, value in figures.items()}, separators=(",", ":"))


def decoded(body: bytes, encoding: str | None) -> bytes:
    if not encoding or encoding == "identity":
        return body
    decoder = _DECODERS.get(encoding)
    if decoder is None:
        raise not_implemented(f"Content-Encoding {encoding}")
    try:
        return decoder(body)
    except Exception as error:
        raise ClickHouseError(271, f"Code: 271. DB::Exception: {encoding} body: {error}. (CANNOT_DECOMPRESS)") from error


def encoded(answer: Answer, compression: bool, accepted: str) -> Answer:
    """The answer compressed with the first encoding the client accepts, if HTTP compression is on."""
    if not compression or not answer.body:
        return answer
    for encoding in (name.split(";")[0].strip() for name in accepted.split(",")):
        if encoding in _ENCODERS:
            return Answer(answer.status, _ENCODERS[encoding](answer.body), {**answer.headers, "Content-Encoding": encoding})
    return answer


def form_fields(content_type: str, body: bytes) -> dict[str, str]:
    """The fields of a multipart/form-data body (query text and bound parameters)."""
    head = b"Content-Type: " + content_type.encode() + b"\r\n\r\n"
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
    fields: dict[str, str] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if part.get_filename() is not None or not isinstance(name, str):
            raise not_implemented("external data")
        fields[name] = part.get_content()
    return fields


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as clickhouse-connect's pooled connections expect
    # An answer leaves in one write, at once: headers and body apart wait out the client's delayed ACK (40 ms).
    wbufsize = -1
    disable_nagle_algorithm = True
    server: StandIn

    def answer(self) -> None:
        body = self._body()  # read whole before anything can fail: the connection stays in step
        url = urllib.parse.urlsplit(self.path)
        params = dict(urllib.parse.parse_qsl(url.query, keep_blank_values=True))
        if url.path == "/ping" or (url.path == "/" and not params and not body):
            self._send(Answer(200, b"Ok.\n", {}))
            return
        if url.path != "/":
            self._send(Answer(404, f"There is no handle {url.path}\n".encode(), {}))
            return
        try:
            content_type = self.headers.get("Content-Type", "")
            if content_type.startswith("multipart/form-data"):
                params.update(form_fields(content_type, body))
                body = b""
            body = decoded(body, self.headers.get("Content-Encoding"))
            engine = self.server.engine
            compression = params.get("enable_http_compression", "1" if engine.http_compression else "0") == "1"
            answer = encoded(run(engine, params, body), compression, self.headers.get("Accept-Encoding", ""))
        except ClickHouseError as error:
            answer = Answer(500, f"{error}\n".encode(), {"X-ClickHouse-Exception-Code": str(error.code)})
        except Exception as error:  # the stand-in's own failure, told to the client rather than a dropped connection
            answer = Answer(
                500, f"Code: 1001. DB::Exception: {error!r}. (STD_EXCEPTION)\n".encode(), {"X-ClickHouse-Exception-Code": "1001"}
            )
        self._send(answer)

    do_GET = do_POST = answer

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() != "chunked":
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))
        # clickhouse-connect streams the blocks of `insert` as they are built.
        chunks = []
        while size := int(self.rfile.readline().split(b";")[0], 16):
            chunks.append(self.rfile.read(size))
            self.rfile.readline()
        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
            pass  # trailers
        return b"".join(chunks)

    def _send(self, answer: Answer) -> None:
        self.send_response(answer.status)
        for name, value in answer.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Type", "text/plain; charset=UTF-8")
        self.send_header("Content-Length", str(len(answer.body)))
        self.end_headers()
        self.wfile.write(answer.body)

    def log_message(self, format: str, *args: object) -> None:
        pass


class StandIn(http.server.ThreadingHTTPServer):
    def __init__(self, port: int, engine: Engine) -> None:
        super().__init__(("127.0.0.1", port), Handler)
        self.engine = engine


def serve(port: int, directory: str) -> None:
    server = StandIn(port, Engine(directory))
    print("ready", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    serve(int(sys.argv[1]), sys.argv[2])
