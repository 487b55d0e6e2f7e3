"""OpenTelemetry tracing: optional, off unless STORECAST_OTLP_ENDPOINT names an OTLP/HTTP traces URL.

Off, no tracer provider is set up and the SDK is not even imported: every
helper here checks one module flag and does nothing more, and the API's
tracer would be its no-op one anyway.

On, each process exports its spans in batches (the SDK's BatchSpanProcessor,
tuned by the standard OTEL_BSP_* variables) under a service name of its
component: `storecast-gateway`, `storecast-ingest`, ..., or `storecast` for
the services of `serve all` (whose gateway workers set up their own
provider, as `storecast-gateway`, from the environment they inherit).

One request is one trace:
- the gateway's server span (`PUT /v1/{site_id}/production/{type}/{id}`: the
  route template, as in the metrics) and, under it, a client span per gRPC call;
- the W3C `traceparent` of that client span travels in the call's metadata
  beside `x-request-id`; the service's server span (`storecast.v1.Ingest/PutProduction`)
  is its child;
- under that, a span per store call (`store insert`, `store query`). A PUT
  grouped with others (services/lib/records/group_commit.py) is inserted on the
  committer's thread: its `commit <table>` span is the child of the first
  request's context in the batch and links to the others', and the store
  span is under it.

Every span of a request carries its id as `storecast.request_id` (a commit
of several requests: all of them, in `storecast.request_ids`).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import grpc
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Link, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from storecast.env import optional_setting
from storecast.status import ApiFailure

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider

ENDPOINT_ENV = "STORECAST_OTLP_ENDPOINT"
REQUEST_ID_ATTRIBUTE = "storecast.request_id"
REQUEST_IDS_ATTRIBUTE = "storecast.request_ids"
_REQUEST_ID_METADATA = "x-request-id"

# The request id travels in the context, so that spans below a server span (the store's) carry it too.
_REQUEST_ID_KEY = otel_context.create_key("storecast.request_id")
_PROPAGATOR = TraceContextTextMapPropagator()
# A proxy until a provider is set, then the provider's tracer.
_TRACER = trace.get_tracer("storecast")
_enabled = False

Metadata = tuple[tuple[str, str], ...]


def enabled() -> bool:
    return _enabled


def service_name(component: str) -> str:
    """`storecast-<component>`; `storecast` for `serve all`'s services process."""
    return "storecast" if component == "all" else f"storecast-{component}"


def setup_tracing(component: str, env: Mapping[str, str] = os.environ) -> TracerProvider | None:
    """Export this process's spans to STORECAST_OTLP_ENDPOINT, if set; the provider (flushed at exit), or None."""
    global _enabled
    endpoint = optional_setting(ENDPOINT_ENV, env)
    if endpoint is None:
        return None
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: service_name(component)}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
    trace.set_tracer_provider(provider)
    _enabled = True
    return provider


def tracer() -> trace.Tracer:
    return _TRACER


def _rpc_attributes(method: str) -> dict[str, str]:
    service, _, name = method.lstrip("/").rpartition("/")
    return {"rpc.system": "grpc", "rpc.service": service, "rpc.method": name}


@contextmanager
def grpc_client_call(method: object, request_id: str) -> Iterator[Metadata]:
    """The metadata of a gateway's gRPC call: the request id, and with tracing the
    `traceparent` of a client span around the call."""
    metadata: Metadata = ((_REQUEST_ID_METADATA, request_id),)
    if not _enabled:
        yield metadata
        return
    raw = getattr(method, "_method", b"")  # grpc.aio's multicallable keeps its method path there
    name = raw.decode() if isinstance(raw, bytes) else str(raw)
    attributes = {**_rpc_attributes(name), REQUEST_ID_ATTRIBUTE: request_id}
    with _TRACER.start_as_current_span(name.lstrip("/") or "grpc", kind=SpanKind.CLIENT, attributes=attributes) as span:
        carrier: dict[str, str] = {}
        _PROPAGATOR.inject(carrier)
        try:
            yield metadata + tuple(carrier.items())
        except grpc.aio.AioRpcError as error:
            span.set_attribute("rpc.grpc.status_code", error.code().value[0])
            raise


@contextmanager
def grpc_server_span(context: grpc.ServicerContext | grpc.aio.ServicerContext[Any, Any], method: str) -> Iterator[None]:
    """A service's span of one call: the child of the caller's, whose `traceparent` is in the metadata."""
    if not _enabled:
        yield
        return
    metadata = {key: value for key, value in context.invocation_metadata() or () if isinstance(value, str)}
    parent = _PROPAGATOR.extract(metadata)
    attributes = _rpc_attributes(method)
    request_id = metadata.get(_REQUEST_ID_METADATA)
    if request_id is not None:
        parent = otel_context.set_value(_REQUEST_ID_KEY, request_id, parent)
        attributes[REQUEST_ID_ATTRIBUTE] = request_id
    token = otel_context.attach(parent)
    try:
        with _TRACER.start_as_current_span(method.lstrip("/"), kind=SpanKind.SERVER, attributes=attributes):
            yield
    finally:
        otel_context.detach(token)


@contextmanager
def store_span(kind: str) -> Iterator[None]:
    """A span of one store call ("insert" or "query"); an ApiFailure raised inside is the caller's error, not the store's."""
    if not _enabled:
        yield
        return
    attributes = {"db.system.name": "clickhouse", "db.operation.name": kind.upper()}
    request_id = otel_context.get_value(_REQUEST_ID_KEY)
    if isinstance(request_id, str):
        attributes[REQUEST_ID_ATTRIBUTE] = request_id
    with _TRACER.start_as_current_span(
        f"store {kind}", kind=SpanKind.CLIENT, attributes=attributes, record_exception=False, set_status_on_exception=False
    ) as span:
        try:
            yield
        except ApiFailure:
            raise
        except Exception as error:
            span.record_exception(error)
            span.set_status(Status(StatusCode.ERROR, type(error).__name__))
            raise


def capture() -> Context | None:
    """The caller's context, for work another thread does on its behalf (`commit_span`); None when off."""
    return otel_context.get_current() if _enabled else None


@contextmanager
def commit_span(table: str, contexts: Sequence[Context | None]) -> Iterator[None]:
    """The span of a group commit on the committer's thread: the child of the first request's
    context, linked to the others'. The store span under it carries the request id only if
    the batch holds one request."""
    if not _enabled:
        yield
        return
    present = [context for context in contexts if context is not None]
    request_ids = [rid for context in present if isinstance(rid := otel_context.get_value(_REQUEST_ID_KEY, context), str)]
    parent = present[0] if present else Context()
    if len(contexts) > 1:
        parent = otel_context.set_value(_REQUEST_ID_KEY, None, parent)
    spans = [trace.get_current_span(context).get_span_context() for context in present[1:]]
    links = [Link(span) for span in spans if span.is_valid]
    token = otel_context.attach(parent)
    try:
        with _TRACER.start_as_current_span(
            f"commit {table}",
            links=links,
            attributes={"storecast.batch.requests": len(contexts), REQUEST_IDS_ATTRIBUTE: request_ids},
        ):
            yield
    finally:
        otel_context.detach(token)
