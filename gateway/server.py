"""Runs the gateway: uvicorn with our TLS-aware HTTP protocol."""

from __future__ import annotations

import uvicorn

from gateway.app import create_app
from gateway.config import GatewaySettings
from gateway.tls import TlsHttpProtocol, server_ssl_options


def build_server(settings: GatewaySettings) -> uvicorn.Server:
    config = uvicorn.Config(
        create_app(settings),
        host=settings.http_host,
        port=settings.http_port,
        http=TlsHttpProtocol,
        lifespan="on",
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=30,
        **server_ssl_options(str(settings.tls_cert), str(settings.tls_key), str(settings.tls_client_ca)),
    )
    return uvicorn.Server(config)
