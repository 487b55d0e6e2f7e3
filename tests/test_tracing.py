"""Tracing (storecast/tracing.py): one PUT's spans from the gateway, the ingest service and
the store, in one trace, sent to an OTLP/HTTP receiver run here; and nothing at all when off."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest, ExportTraceServiceResponse
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

from storecast.tracing import REQUEST_ID_ATTRIBUTE
from tests.conftest import Pki, ok, put, start_storecast, stop_storecast
from tests.helpers import T0

SITE = 100


class Span:
    """What a test needs of an exported span."""

    def __init__(
        self, service: str, name: str, trace_id: str, span_id: str, parent_id: str, attributes: dict[str, object]
    ) -> None:
        self.service, self.name, self.trace_id, self.span_id, self.parent_id = service, name, trace_id, span_id, parent_id
        self.attributes = attributes

    def __repr__(self) -> str:
        return f"Span({self.service!r}, {self.name!r}, trace={self.trace_id[:8]}, attributes={self.attributes})"


def _value(value: AnyValue) -> object:
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return [_value(item) for item in value.array_value.values]
    return getattr(value, kind) if kind is not None else None


class Receiver:
    """An OTLP/HTTP traces endpoint: POST /v1/traces with an ExportTraceServiceRequest (protobuf)."""

    def __init__(self) -> None:
        self.spans: list[Span] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                if self.path != "/v1/traces":
                    self.send_error(404)
                    return
                receiver.add(ExportTraceServiceRequest.FromString(body))
                answer = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("content-type", "application/x-protobuf")
                self.send_header("content-length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/v1/traces"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def add(self, request: ExportTraceServiceRequest) -> None:
        spans = []
        for resource_spans in request.resource_spans:
            resource = {a.key: _value(a.value) for a in resource_spans.resource.attributes}
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    spans.append(
                        Span(
                            str(resource.get("service.name")),
                            span.name,
                            span.trace_id.hex(),
                            span.span_id.hex(),
                            span.parent_span_id.hex(),
                            {a.key: _value(a.value) for a in span.attributes},
                        )
                    )
        with self._lock:
            self.spans.extend(spans)

    def wait_for(self, names: set[str], timeout_s: float = 30) -> list[Span]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self._lock:
                if names <= {span.name for span in self.spans}:
                    return list(self.spans)
            time.sleep(0.1)
        raise AssertionError(f"spans {names} not all received: {self.spans}")

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    instance = Receiver()
    yield instance
    instance.close()


GATEWAY_SPAN = "PUT /v1/{site_id}/production/{type}"
# A lone small PUT goes by the shared method (gateway/shared_calls.py).
CLIENT_SPAN = "storecast.v1.Ingest/PutProductionMany"
STORE_SPAN = "store insert"


def test_one_put_is_one_trace_from_the_gateway_to_the_store(tmp_path: Path, test_pki: Pki, receiver: Receiver) -> None:
    # The log off: the PUT waits for its insert, whose span is then in its trace (with the log,
    # the insert is the flusher's, after the 201).
    env = {"STORECAST_OTLP_ENDPOINT": receiver.url, "OTEL_BSP_SCHEDULE_DELAY": "100", "STORECAST_LOG": "0"}
    instance = start_storecast(tmp_path, test_pki, env)
    try:
        with instance.client("admin") as admin:
            response = put(admin, f"/v1/{SITE}/production/renewable", [{"timestamp": T0, "id": 1, "p": 1.0}])
            ok(response, 201)
        request_id = response.headers["x-request-id"]
        spans = receiver.wait_for({GATEWAY_SPAN, CLIENT_SPAN, STORE_SPAN})
    finally:
        stop_storecast(instance)
    assert instance.process.returncode == 0, instance.log.read_text()

    mine = [span for span in spans if span.attributes.get(REQUEST_ID_ATTRIBUTE) == request_id]
    [server] = [span for span in mine if span.name == GATEWAY_SPAN]
    trace = [span for span in spans if span.trace_id == server.trace_id]
    by_id = {span.span_id: span for span in trace}
    # The gateway's server span is the root; its gRPC client span, the service's server span under it, the store's under that.
    assert server.service == "storecast-gateway" and server.parent_id == ""
    assert server.attributes["http.response.status_code"] == 201
    [client] = [span for span in trace if span.name == CLIENT_SPAN and span.service == "storecast-gateway"]
    [service] = [span for span in trace if span.name == CLIENT_SPAN and span.service == "storecast"]
    [store] = [span for span in trace if span.name == STORE_SPAN]
    assert client.parent_id == server.span_id
    assert service.parent_id == client.span_id
    assert store.service == "storecast"
    assert store.attributes["db.system.name"] == "clickhouse"
    # The store span is under the service's span: directly, or through the group commit's.
    ancestor = by_id[store.parent_id]
    while ancestor.span_id != service.span_id:
        assert ancestor.parent_id in by_id, (ancestor, trace)
        ancestor = by_id[ancestor.parent_id]
    for span in (server, client, service, store):
        assert span.attributes[REQUEST_ID_ATTRIBUTE] == request_id, span


def test_without_the_endpoint_no_provider_and_no_sdk(tmp_path: Path) -> None:
    """Unset: no tracer provider, no exporter, and the SDK not even imported by any component."""
    script = """
import os, sys
os.environ.pop("STORECAST_OTLP_ENDPOINT", None)
from opentelemetry import trace
import storecast.cli, gateway.app, services.server
from storecast import tracing
assert tracing.setup_tracing("gateway") is None
assert tracing.setup_tracing("all", {"STORECAST_OTLP_ENDPOINT": ""}) is None
assert not tracing.enabled()
assert not any(name.startswith(("opentelemetry.sdk", "opentelemetry.exporter")) for name in sys.modules), sorted(sys.modules)
assert type(trace.get_tracer_provider()).__name__ == "ProxyTracerProvider", trace.get_tracer_provider()
with tracing.grpc_client_call(None, "abc") as metadata:
    assert metadata == (("x-request-id", "abc"),)
print("ok")
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
