"""The gRPC server every service runs in: API errors, request ids, health, reflection.

Services raise `ApiFailure`; the interceptor here is the one place that turns
it into a gRPC status carrying an `ApiError`, and any other exception into
1500 with the cause logged under the caller's request id (never sent).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent import futures
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from grpc_status import rpc_status

from services.lib.rpc.metrics import GRPC_HANDLED, GRPC_HANDLING, GRPC_IN_FLIGHT
from storecast.status import ApiFailure, ApiStatus, to_rpc_status
from storecast.tracing import grpc_server_span

log = logging.getLogger("storecast.rpc")

REQUEST_ID_KEY = "x-request-id"


def request_id_of(context: grpc.ServicerContext) -> str:
    for key, value in context.invocation_metadata():
        if key == REQUEST_ID_KEY:
            return str(value)
    return "-"


_CODE_NAMES = {code.value[0]: code.name for code in grpc.StatusCode}


class _MethodMetrics:
    """The metrics of one gRPC method ("/storecast.v1.Ingest/PutProduction"), bound once."""

    def __init__(self, method: str) -> None:
        self.service, _, self.name = method.lstrip("/").rpartition("/")
        self.handling = GRPC_HANDLING.labels(self.service, self.name)
        self.in_flight = GRPC_IN_FLIGHT.labels(self.service)

    def handled(self, code: str, api_status: str) -> None:
        GRPC_HANDLED.labels(self.service, self.name, code, api_status).inc()


class ApiErrorInterceptor(grpc.ServerInterceptor):
    """An ApiFailure becomes its gRPC status with the ApiError in the details;
    anything else is logged and becomes 1500. Streams likewise, mid-stream too.
    Each call is timed and counted (services/lib/rpc/metrics.py)."""

    def __init__(self) -> None:
        # Only methods that have a handler: bounded by the services registered.
        self._metrics: dict[str, _MethodMetrics] = {}

    def intercept_service(self, continuation: Callable[..., Any], handler_call_details: grpc.HandlerCallDetails) -> Any:
        handler = continuation(handler_call_details)
        if handler is None:
            return handler
        method = handler_call_details.method
        metrics = self._metrics.get(method)
        if metrics is None:
            metrics = self._metrics[method] = _MethodMetrics(method)
        if handler.unary_unary is not None:
            unary = handler.unary_unary

            def guarded(request: Any, context: grpc.ServicerContext) -> Any:
                with grpc_server_span(context, method), _api_errors(context, method, metrics):
                    return unary(request, context)

            return grpc.unary_unary_rpc_method_handler(
                guarded, request_deserializer=handler.request_deserializer, response_serializer=handler.response_serializer
            )
        if handler.unary_stream is not None:
            stream = handler.unary_stream

            def guarded_stream(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
                with grpc_server_span(context, method), _api_errors(context, method, metrics):
                    yield from stream(request, context)

            return grpc.unary_stream_rpc_method_handler(
                guarded_stream,
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        return handler


@contextmanager
def _api_errors(context: grpc.ServicerContext, method: str, metrics: _MethodMetrics) -> Iterator[None]:
    started = time.perf_counter()
    metrics.in_flight.inc()
    code, api_status = "OK", str(ApiStatus.SUCCESS)
    try:
        yield
    except ApiFailure as failure:
        status = to_rpc_status(failure)
        code, api_status = _CODE_NAMES.get(status.code, str(status.code)), str(failure.code)
        context.abort_with_status(rpc_status.to_status(status))
    except Exception:
        log.exception("request_id=%s method=%s failed", request_id_of(context), method)
        status = to_rpc_status(ApiFailure(ApiStatus.SERVER_ERROR))
        code, api_status = _CODE_NAMES.get(status.code, str(status.code)), str(ApiStatus.SERVER_ERROR)
        context.abort_with_status(rpc_status.to_status(status))
    except BaseException:  # GeneratorExit: the caller went away during a stream
        code, api_status = "CANCELLED", "none"
        raise
    finally:
        metrics.in_flight.dec()
        metrics.handling.observe(time.perf_counter() - started)
        metrics.handled(code, api_status)


def message_size_options(max_bytes: int) -> list[tuple[str, int]]:
    return [
        ("grpc.max_receive_message_length", max_bytes),
        ("grpc.max_send_message_length", -1),
    ]


# Callers learn of new replicas behind a headless Service only when they
# resolve its name again, which they do when a connection ends: ending each
# after five minutes (calls in flight get a minute to finish) spreads the load
# onto replicas an autoscaler has just added.
CONNECTION_AGE_OPTIONS = [("grpc.max_connection_age_ms", 300_000), ("grpc.max_connection_age_grace_ms", 60_000)]


# A registration adds one servicer to the server and names it for health checks.
Registration = Callable[[grpc.Server], str]


def serve(
    address: str,
    registrations: Iterable[Registration],
    *,
    workers: int,
    max_message_bytes: int,
    credentials: grpc.ServerCredentials | None = None,
    health_address: str | None = None,
    interceptors: Sequence[grpc.ServerInterceptor] = (),
    publish_health: Callable[[health.HealthServicer, list[str]], None] | None = None,
) -> grpc.Server:
    """Start a server with the given services, all reported SERVING (or as
    `publish_health` keeps them: services/lib/rpc/readiness.py); over mutual TLS
    with `credentials`, and with health also on `health_address`.
    `interceptors` run inside ApiErrorInterceptor, which answers their ApiFailures."""
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="rpc"),
        interceptors=[ApiErrorInterceptor(), *interceptors],
        options=message_size_options(max_message_bytes) + CONNECTION_AGE_OPTIONS,
    )
    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    names = [register(server) for register in registrations]
    # Server reflection: grpcurl and other tools list and call the services without the .proto files.
    reflection.enable_server_reflection([*names, health.SERVICE_NAME, reflection.SERVICE_NAME], server)
    if address.startswith("unix:"):
        _prepare_socket(Path(address.removeprefix("unix:")))
    bound = server.add_insecure_port(address) if credentials is None else server.add_secure_port(address, credentials)
    if bound == 0:
        raise OSError(f"cannot listen on {address}")
    server.start()
    if health_address is not None:
        serve_health(health_servicer, health_address, server)
    if publish_health is not None:
        publish_health(health_servicer, names)
    else:
        for name in names + [""]:
            health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    log.info("gRPC %s listening on %s%s", ", ".join(names), address, " (mutual TLS)" if credentials else "")
    return server


def _prepare_socket(path: Path) -> None:
    """A Unix socket's directory only this user can enter, so no other local user can
    open the socket (its own mode follows the umask), and no stale socket of a previous run."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.parent.chmod(0o700)
    path.unlink(missing_ok=True)


def serve_health(health_servicer: health.HealthServicer, address: str, main: grpc.Server) -> None:
    """The health service alone, in plaintext, for probes that cannot present a
    client certificate (Kubernetes' gRPC probes speak no TLS); it reports the
    main server's statuses, and stops when the main server does."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2, thread_name_prefix="health"))
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    if server.add_insecure_port(address) == 0:
        raise OSError(f"cannot listen on {address}")
    server.start()

    def stop_with_main() -> None:
        main.wait_for_termination()
        server.stop(grace=None)

    threading.Thread(target=stop_with_main, name="health-stop", daemon=True).start()
    log.info("gRPC health listening on %s", address)
