"""Log lines (H7): one JSON object per line outside development, plain text in it.

Every line written while a request is answered carries its request id, tenant and GraphQL
operation; each request ends with one line of its own (logger `app.requests`) with its
status and duration, which replaces uvicorn's access log.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import orjson

from app.metrics import Observation, current
from app.settings import Settings

requests_log = logging.getLogger("app.requests")

# What a request's own line adds (`extra=`), in this order.
_REQUEST_FIELDS = ("method", "path", "status", "duration_ms")


class JsonFormatter(logging.Formatter):
    """`{"time", "level", "logger", "message", ...}`: the request's id, tenant and operation
    when there is one, a request line's status and duration, and any exception's traceback."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        observation = current()
        if observation is not None:
            line["request_id"] = observation.request_id
            if observation.tenant:
                line["tenant"] = observation.tenant
            if observation.operation:
                line["operation"] = observation.operation
        for name in _REQUEST_FIELDS:
            if name in record.__dict__:
                line[name] = record.__dict__[name]
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(line, default=str).decode()


class PlainFormatter(logging.Formatter):
    """`LEVEL logger: message [request ...]`, for a developer's terminal."""

    def format(self, record: logging.LogRecord) -> str:
        text = f"{record.levelname} {record.name}: {record.getMessage()}"
        observation = current()
        if observation is not None and record.name != requests_log.name:
            text += f" [request {observation.request_id}]"
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return text


def log_request(observation: Observation, seconds: float) -> None:
    """The line that ends each request."""
    if not requests_log.isEnabledFor(logging.INFO):
        return
    duration_ms = round(seconds * 1000, 1)
    details = " ".join(
        f"{name}={value}"
        for name, value in (
            ("operation", observation.operation),
            ("tenant", observation.tenant),
            ("request", observation.request_id),
        )
        if value
    )
    requests_log.info(
        "%s %s %s %.1f ms %s",
        observation.method,
        observation.path,
        observation.status,
        duration_ms,
        details,
        extra={
            "method": observation.method,
            "path": observation.path,
            "status": observation.status,
            "duration_ms": duration_ms,
        },
    )


def logging_config(settings: Settings) -> dict[str, Any]:
    """uvicorn's `log_config`: applied in every worker, for the app's loggers and its own."""
    formatter = "plain" if settings.is_development else "json"
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "json": {"()": JsonFormatter},
            "plain": {"()": PlainFormatter},
        },
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": formatter,
                "stream": "ext://sys.stderr",
            }
        },
        "root": {"handlers": ["stderr"], "level": "INFO"},
        "loggers": {
            # uvicorn's own handlers would write its lines a second time.
            "uvicorn": {"handlers": [], "propagate": True},
            "uvicorn.error": {"handlers": [], "propagate": True},
            "uvicorn.access": {"handlers": [], "propagate": False},
        },
    }
