"""The gRPC server every service runs in: API errors, request ids, health, reflection.

Services raise `ApiFailure`; the interceptor here is the one place that turns
it into a gRPC status carrying an `ApiError`, and any other exception into
1500 with the cause logged under the caller's request id (never sent).

The server is grpcio's asyncio server on an event loop of its own thread. A
coroutine handler (the production PUT, whose write-ahead log's syncs the loop
gathers) runs on that loop; every other handler runs on the thread pool, as
grpcio's thread-pool server would run it, a stream's step by step
(`on_worker_threads`, so that a caller's cancel closes it). One loop and no thread per call is
what a small request costs least with: a call handed from thread to thread
through the interpreter lock costs more CPU than the handler itself
(docs/architecture/recent-writes.md).
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import logging
import threading
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Iterable, Iterator, Sequence
from concurrent import futures
from contextlib import aclosing
from functools import partial, wraps
from pathlib import Path
from typing import Any, ParamSpec, TypeAlias, TypeVar, cast

import grpc
import uvloop
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from grpc_status import rpc_status

from services.lib.rpc.metrics import GRPC_HANDLED, GRPC_HANDLING, GRPC_IN_FLIGHT
from storecast.status import ApiFailure, ApiStatus, to_rpc_status
from storecast.tracing import grpc_server_span

log = logging.getLogger("storecast.rpc")

REQUEST_ID_KEY = "x-request-id"


def request_id_of(context: grpc.ServicerContext | grpc.aio.ServicerContext[Any, Any]) -> str:
    for key, value in context.invocation_metadata() or ():
        if key == REQUEST_ID_KEY:
            return str(value)
    return "-"


_CODE_NAMES = {code.value[0]: code.name for code in grpc.StatusCode}
Handler: TypeAlias = "grpc.RpcMethodHandler[Any, Any]"
# What a coroutine handler is given (the production PUT, the production GET).
Context: TypeAlias = "grpc.aio.ServicerContext[Any, Any]"


class _MethodMetrics:
    """The metrics of one gRPC method ("/storecast.v1.Ingest/PutProduction"), bound once."""

    def __init__(self, method: str) -> None:
        self.service, _, self.name = method.lstrip("/").rpartition("/")
        self.handling = GRPC_HANDLING.labels(self.service, self.name)
        self.in_flight = GRPC_IN_FLIGHT.labels(self.service)

    def handled(self, code: str, api_status: str) -> None:
        GRPC_HANDLED.labels(self.service, self.name, code, api_status).inc()


def wraps_coroutine(function: Callable[..., Any]) -> bool:
    return inspect.iscoroutinefunction(function)


def wraps_async_generator(function: Callable[..., Any]) -> bool:
    return inspect.isasyncgenfunction(function)


Item = TypeVar("Item")
Params = ParamSpec("Params")
_END = object()


def on_worker_threads(handler: Callable[Params, Iterator[Item]]) -> Callable[Params, AsyncGenerator[Item]]:
    """A stream handler whose replies come from an iterator, run step by step on worker
    threads (the handler's call too) as an async generator.

    grpcio runs an iterator handler on its threads itself, but never closes the
    iterator when the caller goes away: its `with` blocks (a store connection,
    an engine query) would stay open. An async generator handler is closed, and
    closes the iterator once the step in progress has returned."""

    @wraps(handler)
    async def on_threads(*args: Params.args, **kwargs: Params.kwargs) -> AsyncGenerator[Item]:
        loop = asyncio.get_running_loop()
        step: asyncio.Future[Any] = loop.run_in_executor(None, partial(contextvars.copy_context().run, handler, *args, **kwargs))
        items: Iterator[Item] = await asyncio.shield(step)
        try:
            while True:
                step = loop.run_in_executor(None, partial(contextvars.copy_context().run, next, items, _END))
                item = await asyncio.shield(step)
                if item is _END:
                    return
                yield cast(Item, item)
        finally:
            if not step.done():
                await asyncio.wait([step])
            close = getattr(items, "close", None)
            if close is not None:
                await loop.run_in_executor(None, close)

    return on_threads


class ApiErrorInterceptor(grpc.aio.ServerInterceptor):
    """An ApiFailure becomes its gRPC status with the ApiError in the details;
    anything else is logged and becomes 1500. Streams likewise, mid-stream too.
    Each call is timed and counted (services/lib/rpc/metrics.py)."""

    def __init__(self) -> None:
        # Only methods that have a handler: bounded by the services registered.
        self._metrics: dict[str, _MethodMetrics] = {}

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Handler | None]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Handler | None:
        handler = await continuation(handler_call_details)
        if handler is None:
            return handler
        method = handler_call_details.method
        metrics = self._metrics.get(method)
        if metrics is None:
            metrics = self._metrics[method] = _MethodMetrics(method)
        if handler.unary_unary is not None and wraps_coroutine(handler.unary_unary):
            coroutine = cast(Callable[[Any, Context], Awaitable[Any]], handler.unary_unary)

            async def guarded_coroutine(request: Any, context: Context) -> Any:
                with grpc_server_span(context, method), _Call(context, method, metrics) as call:
                    return await coroutine(request, context)
                await _abort(context, call.status)

            return unary_handler(guarded_coroutine, handler)
        if handler.unary_unary is not None:
            unary = handler.unary_unary

            def guarded(request: Any, context: grpc.ServicerContext) -> Any:
                with grpc_server_span(context, method), _Call(context, method, metrics) as call:
                    return unary(request, context)
                _abort_sync(context, call.status)

            return unary_handler(guarded, handler)
        if handler.stream_unary is not None and wraps_coroutine(handler.stream_unary):
            receiver = cast(Callable[[AsyncIterator[Any], Context], Awaitable[Any]], handler.stream_unary)

            async def guarded_receiver(requests: AsyncIterator[Any], context: Context) -> Any:
                with grpc_server_span(context, method), _Call(context, method, metrics) as call:
                    return await receiver(requests, context)
                await _abort(context, call.status)

            return stream_unary_handler(guarded_receiver, handler)
        if handler.unary_stream is not None and wraps_async_generator(handler.unary_stream):
            generator = cast(Callable[[Any, Context], AsyncGenerator[Any]], handler.unary_stream)

            async def guarded_generator(request: Any, context: Context) -> AsyncIterator[Any]:
                # The span covers the first reply, the call's work up to it: one kept open across
                # the pauses between replies would be current in whatever the loop does meanwhile.
                with _Call(context, method, metrics) as call:
                    async with aclosing(generator(request, context)) as replies:
                        with grpc_server_span(context, method):
                            reply = await anext(replies, _END)
                        while reply is not _END:
                            yield reply
                            reply = await anext(replies, _END)
                    return
                await _abort(context, call.status)

            return unary_stream_handler(guarded_generator, handler)
        if handler.unary_stream is not None:
            stream = handler.unary_stream

            def guarded_stream(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
                with grpc_server_span(context, method), _Call(context, method, metrics) as call:
                    yield from stream(request, context)
                    return
                _abort_sync(context, call.status)

            return unary_stream_handler(guarded_stream, handler)
        return handler


Deserializer = Callable[[bytes], Any]


def unary_handler(behaviour: Callable[..., Any], handler: Handler, deserializer: Deserializer | None = None) -> Handler:
    """`handler`'s method, with `behaviour` in place of its own (an interceptor's wrapper),
    and `deserializer` in place of its own if given."""
    return grpc.unary_unary_rpc_method_handler(
        behaviour,
        request_deserializer=deserializer or handler.request_deserializer,
        response_serializer=handler.response_serializer,
    )


def unary_stream_handler(behaviour: Callable[..., Any], handler: Handler) -> Handler:
    return grpc.unary_stream_rpc_method_handler(
        behaviour, request_deserializer=handler.request_deserializer, response_serializer=handler.response_serializer
    )


def stream_unary_handler(behaviour: Callable[..., Any], handler: Handler, deserializer: Deserializer | None = None) -> Handler:
    return grpc.stream_unary_rpc_method_handler(
        behaviour,
        request_deserializer=deserializer or handler.request_deserializer,
        response_serializer=handler.response_serializer,
    )


async def _abort(context: Context, status: grpc.Status | None) -> None:
    assert status is not None
    await context.abort(status.code, status.details, status.trailing_metadata)


def _abort_sync(context: grpc.ServicerContext, status: grpc.Status | None) -> None:
    """A thread-pool handler's context has `abort` and no `abort_with_status`; the trailing
    metadata carries the ApiError all the same."""
    assert status is not None
    context.abort(status.code, status.details, status.trailing_metadata)  # type: ignore[call-arg]


class _Call:
    """One call, timed and counted; an exception it ends with is kept as the status to abort with."""

    def __init__(self, context: Any, method: str, metrics: _MethodMetrics) -> None:
        self._context = context
        self._method = method
        self._metrics = metrics
        self._started = 0.0
        self.status: grpc.Status | None = None

    def __enter__(self) -> _Call:
        self._started = time.perf_counter()
        self._metrics.in_flight.inc()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, traceback: object) -> bool:
        code, api_status = "OK", str(ApiStatus.SUCCESS)
        if isinstance(error, ApiFailure):
            status = to_rpc_status(error)
            code, api_status = _CODE_NAMES.get(status.code, str(status.code)), str(error.code)
            self.status = rpc_status.to_status(status)
        elif isinstance(error, Exception):
            log.error("request_id=%s method=%s failed", request_id_of(self._context), self._method, exc_info=error)
            status = to_rpc_status(ApiFailure(ApiStatus.SERVER_ERROR))
            code, api_status = _CODE_NAMES.get(status.code, str(status.code)), str(ApiStatus.SERVER_ERROR)
            self.status = rpc_status.to_status(status)
        elif error is not None:  # GeneratorExit or CancelledError: the caller went away
            code, api_status = "CANCELLED", "none"
        self._metrics.in_flight.dec()
        self._metrics.handling.observe(time.perf_counter() - self._started)
        self._metrics.handled(code, api_status)
        return self.status is not None


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
Registration = Callable[[grpc.aio.Server], str]


class RpcServer:
    """The services' server, its event loop's thread, and the plaintext health server beside it."""

    def __init__(self, server: grpc.aio.Server, loop: asyncio.AbstractEventLoop, thread: threading.Thread) -> None:
        self._server = server
        self._loop = loop
        self._thread = thread
        self.health_server: grpc.Server | None = None

    def stop(self, grace: float | None) -> None:
        """Refuses new calls, lets those in flight finish within `grace` seconds, then stops the loop."""
        asyncio.run_coroutine_threadsafe(self._server.stop(grace), self._loop).result()
        if self.health_server is not None:
            self.health_server.stop(grace=None)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()


def serve(
    address: str,
    registrations: Iterable[Registration],
    *,
    workers: int,
    max_message_bytes: int,
    credentials: grpc.ServerCredentials | None = None,
    health_address: str | None = None,
    interceptors: Sequence[grpc.aio.ServerInterceptor] = (),
    publish_health: Callable[[health.HealthServicer, list[str]], None] | None = None,
) -> RpcServer:
    """Start a server with the given services, all reported SERVING (or as
    `publish_health` keeps them: services/lib/rpc/readiness.py); over mutual TLS
    with `credentials`, and with health also on `health_address`.
    `interceptors` run inside ApiErrorInterceptor, which answers their ApiFailures."""
    loop = uvloop.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="rpc-loop", daemon=True)
    thread.start()
    # The health servicer's statuses are set from any thread (readiness), which its sync form allows.
    health_servicer = health.HealthServicer()

    # The thread-pool handlers' threads, and those a coroutine handler hands blocking work to (asyncio.to_thread).
    pool = futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="rpc")
    loop.set_default_executor(pool)

    async def start() -> tuple[grpc.aio.Server, list[str]]:
        server = grpc.aio.server(
            migration_thread_pool=pool,
            interceptors=[ApiErrorInterceptor(), *interceptors],
            options=message_size_options(max_message_bytes) + CONNECTION_AGE_OPTIONS,
        )
        health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
        names = [register(server) for register in registrations]
        # Server reflection: grpcurl and other tools list and call the services without the .proto files.
        reflection.enable_server_reflection([*names, health.SERVICE_NAME, reflection.SERVICE_NAME], server)
        if address.startswith("unix:"):
            _prepare_socket(Path(address.removeprefix("unix:")))
        bound = server.add_insecure_port(address) if credentials is None else server.add_secure_port(address, credentials)
        if bound == 0:
            raise OSError(f"cannot listen on {address}")
        await server.start()
        return server, names

    server, names = asyncio.run_coroutine_threadsafe(start(), loop).result()
    running = RpcServer(server, loop, thread)
    if health_address is not None:
        running.health_server = serve_health(health_servicer, health_address)
    if publish_health is not None:
        publish_health(health_servicer, names)
    else:
        for name in names + [""]:
            health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    log.info("gRPC %s listening on %s%s", ", ".join(names), address, " (mutual TLS)" if credentials else "")
    return running


def _prepare_socket(path: Path) -> None:
    """A Unix socket's directory only this user can enter, so no other local user can
    open the socket (its own mode follows the umask), and no stale socket of a previous run."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.parent.chmod(0o700)
    path.unlink(missing_ok=True)


def serve_health(health_servicer: health.HealthServicer, address: str) -> grpc.Server:
    """The health service alone, in plaintext, for probes that cannot present a
    client certificate (Kubernetes' gRPC probes speak no TLS); it reports the
    main server's statuses, and the main server stops it."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2, thread_name_prefix="health"))
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    if server.add_insecure_port(address) == 0:
        raise OSError(f"cannot listen on {address}")
    server.start()
    log.info("gRPC health listening on %s", address)
    return server
