"""Environment configuration every component reads the same way."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import grpc

# The gRPC services: a `storecast serve` target each, which callers find at STORECAST_<NAME>_TARGET.
SERVICE_TARGETS = ("ingest", "query", "vector")

# The default of every STORECAST_* setting that has a fixed one (docs/operations/
# configuration.md); the gateway's and the services' settings both read them
# through `setting`, so a default is written once. Those that default to a
# file of the dev dir, or to nothing, are worked out where they are read.
DEFAULTS: dict[str, str] = {
    "STORECAST_DEV_DIR": ".dev",
    "STORECAST_HTTP_HOST": "127.0.0.1",
    "STORECAST_HTTP_PORT": "8443",
    "STORECAST_HTTP_WORKERS": "1",
    "STORECAST_GRPC_HOST": "127.0.0.1",
    "STORECAST_GRPC_PORT": "50051",
    "STORECAST_GRPC_TIMEOUT_S": "30",
    "STORECAST_BODY_TIMEOUT_S": "60",
    "STORECAST_MAX_RECORDS": "100000",
    "STORECAST_MAX_BODY_BYTES": str(32 * 1024 * 1024),
    # A PUT waiting for its batch's insert holds a worker thread, idle; the
    # store's connections bound how many engine calls run at once.
    "STORECAST_GRPC_WORKERS": "64",
    "STORECAST_STORE_CONNECTIONS": "8",
    "STORECAST_BATCH_MODE": "group",
    "STORECAST_BATCH_MAX_ROWS": "100000",
    "STORECAST_BATCH_GATHER_MS": "5",
    # The metrics endpoint listens here when STORECAST_METRICS_PORT is set (storecast/metrics.py).
    "STORECAST_METRICS_HOST": "127.0.0.1",
    "STORECAST_LOG_LEVEL": "INFO",
    # Admission control, per process: PUT body bytes and decoded rows in flight at once.
    "STORECAST_INFLIGHT_BODY_BYTES": str(256 * 1024 * 1024),
    "STORECAST_INFLIGHT_RECORDS": "2000000",
    "STORECAST_FSYNC": "1",
    "STORECAST_ROLLUPS": "1",
    "STORECAST_INSERT_QUORUM": "auto",
    # The ingest service's write-ahead log and hot tier (services/ingest/, services/lib/recent/).
    "STORECAST_LOG": "1",
    "STORECAST_LOG_MAX_BYTES": str(1024 * 1024 * 1024),
    "STORECAST_FLUSH_INTERVAL": "1",
    "STORECAST_FLUSH_MAX_ROWS": "100000",
    "STORECAST_HOT_WINDOW": "3600",
    "STORECAST_HOT_MAX_BYTES": str(512 * 1024 * 1024),
    # The query service's answers of settled production reads (services/query/answer_cache.py).
    "STORECAST_ANSWER_CACHE_BYTES": str(64 * 1024 * 1024),
}


def setting(name: str, env: Mapping[str, str] = os.environ) -> str:
    """A setting's value: the environment's if set and not empty, else its default."""
    return env.get(name) or DEFAULTS[name]


def optional_setting(name: str, env: Mapping[str, str] = os.environ) -> str | None:
    """A setting without a default: None when unset or empty."""
    return env.get(name) or None


def dev_dir() -> Path:
    """Where `make run` keeps the embedded store, the dev PKI and permissions."""
    return Path(setting("STORECAST_DEV_DIR")).resolve()


def grpc_address() -> str:
    """Where the services listen (all of them in `serve all`), and so where the gateway calls them by default."""
    return f"{setting('STORECAST_GRPC_HOST')}:{setting('STORECAST_GRPC_PORT')}"


@dataclass(frozen=True, slots=True)
class TlsFiles:
    """A certificate, its key and the CA the other side must chain to: internal mutual TLS.

    Read from <PREFIX>_CERT, <PREFIX>_KEY and <PREFIX>_CA; all three or none
    (none is plaintext gRPC).
    """

    cert: Path
    key: Path
    ca: Path

    @classmethod
    def from_env(cls, env: Mapping[str, str], prefix: str) -> TlsFiles | None:
        names = (f"{prefix}_CERT", f"{prefix}_KEY", f"{prefix}_CA")
        values = [env.get(name, "") for name in names]
        if not any(values):
            return None
        if not all(values):
            missing = [name for name, value in zip(names, values) if not value]
            raise ValueError(f"internal mTLS needs all of {', '.join(names)}; missing {', '.join(missing)}")
        return cls(*(Path(value) for value in values))

    def channel_credentials(self) -> grpc.ChannelCredentials:
        """A caller's: present our certificate, trust services that chain to the CA."""
        return grpc.ssl_channel_credentials(
            root_certificates=self.ca.read_bytes(), private_key=self.key.read_bytes(), certificate_chain=self.cert.read_bytes()
        )

    def server_credentials(self) -> grpc.ServerCredentials:
        """A service's: accept only callers whose certificate chains to the CA."""
        return grpc.ssl_server_credentials(
            [(self.key.read_bytes(), self.cert.read_bytes())], root_certificates=self.ca.read_bytes(), require_client_auth=True
        )
