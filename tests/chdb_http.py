"""A stand-in ClickHouse server for the readiness tests: the embedded engine (chDB)
behind ClickHouse's HTTP interface, as far as clickhouse-connect's start-up, DDL
and plain queries need it (the query text from the URL and the body, answered in
the format the query names, query parameters `param_*` bound; errors with
X-ClickHouse-Exception-Code). It ignores per-request settings and takes no insert
data: enough to start the services on it, apply the schema, answer the readiness
probe and plain reads, not to serve PUTs.

    python -m tests.chdb_http PORT DATA_DIR

Killing it is "the store is down" (connection refused); starting it again on the
same port and directory is "the store is back", with the schema it kept.
"""

from __future__ import annotations

import http.server
import sys
import threading
import urllib.parse

from chdb import session


def serve(port: int, directory: str) -> None:
    engine = session.Session(directory)  # type: ignore[no-untyped-call]
    lock = threading.Lock()

    class Handler(http.server.BaseHTTPRequestHandler):
        def answer(self) -> None:
            query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(self.path).query))
            body = self.rfile.read(int(self.headers.get("content-length") or 0))
            sql = query.get("query", "") + ("\n" + body.decode() if body else "")
            try:
                with lock:
                    params = {name[6:]: value for name, value in query.items() if name.startswith("param_")}
                    data = engine.query(sql, "TabSeparated", params=params).bytes()  # type: ignore[no-untyped-call]
                status, headers = 200, {}
            except Exception as error:
                data = f"Code: 1001. DB::Exception: {error}".encode()
                status, headers = 500, {"X-ClickHouse-Exception-Code": "1001"}
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = answer

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
    print("ready", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    serve(int(sys.argv[1]), sys.argv[2])
