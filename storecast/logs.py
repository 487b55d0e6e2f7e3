"""Logging of every `storecast serve` process: one JSON object per line on stderr.

The one place logging is set up (storecast/cli.py calls `setup_logging`).
Each line holds `time` (UTC, ISO 8601), `level`, `logger` and `message`, the
fields a record carries in `extra={"fields": {...}}` (the gateway's access
log: gateway/metrics.py), and `exception` with the traceback when there is
one. The level is STORECAST_LOG_LEVEL's (DEBUG, INFO, WARNING, ERROR).
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

import msgspec

from storecast.env import setting

LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def _as_text(value: Any) -> str:
    return str(value)


_encoder = msgspec.json.Encoder(enc_hook=_as_text)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            entry.update(fields)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return _encoder.encode(entry).decode()


def log_level() -> str:
    level = setting("STORECAST_LOG_LEVEL").strip().upper()
    if level not in LEVELS:
        raise SystemExit(f"STORECAST_LOG_LEVEL must be one of {', '.join(LEVELS)}, got {level!r}")
    return level


def setup_logging() -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter())
    logging.basicConfig(level=log_level(), handlers=[handler], force=True)
