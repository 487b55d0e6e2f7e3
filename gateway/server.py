"""Runs the gateway: uvicorn with our TLS-aware HTTP protocol."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn

from gateway.app import create_app
from gateway.config import GatewaySettings
from gateway.tls import GatewayHttpProtocol, server_ssl_options


class GatewayServer(uvicorn.Server):
    """uvicorn re-raises SIGTERM after its graceful shutdown, which would kill the
    process before `storecast serve all` drains its gRPC services; this server
    only stops serving and returns."""

    @contextmanager
    def capture_signals(self) -> Iterator[None]:
        previous = {signum: signal.signal(signum, self.handle_exit) for signum in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)


def build_server(settings: GatewaySettings) -> uvicorn.Server:
    config = uvicorn.Config(
        create_app(settings),
        host=settings.http_host,
        port=settings.http_port,
        http=GatewayHttpProtocol,
        lifespan="on",
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=30,
        **server_ssl_options(str(settings.tls_cert), str(settings.tls_key), str(settings.tls_client_ca)),
    )
    return GatewayServer(config)
