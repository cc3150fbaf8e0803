"""Structured logs: one JSON object per line, carrying the request id of the request that
caused it.

Log calls name an event and pass fields in ``extra``::

    log.info("token.issued", extra={"jti": jti, "tier": tier})

→ ``{"ts": "...", "level": "info", "logger": "app.tokens.events", "event": "token.issued",
"request_id": "...", "jti": "...", "tier": "partner"}``. A ``jti`` names a token's row; it is
not the token. Never put a token, key, secret or presigned URL in a message or a field.
"""

from __future__ import annotations

import json
import logging
from contextvars import ContextVar
from datetime import UTC, datetime

from app.settings import Settings

REQUEST_ID: ContextVar[str | None] = ContextVar("weightgate_request_id", default=None)

# Attributes every LogRecord has; anything else on a record came from ``extra``.
_STANDARD = frozenset(
    logging.LogRecord("", 0, "", 0, "", None, None).__dict__.keys()
    | {"message", "asctime", "request_id", "taskName"}
)
_OURS = "_weightgate_handler"


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "request_id", None) is None:
            record.request_id = REQUEST_ID.get()
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
        }
        request_id = getattr(record, "request_id", None)
        if request_id:
            out["request_id"] = request_id
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                out[key] = value
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        fields = {k: v for k, v in record.__dict__.items() if k not in _STANDARD and k[0] != "_"}
        return line + ("".join(f" {k}={v}" for k, v in fields.items()) if fields else "")


def configure_logging(settings: Settings) -> logging.Handler:
    """Send the ``app`` loggers to stderr as JSON (or text); idempotent."""
    # Neither format shows threads or processes: don't look them up for every record (the
    # logging HOWTO's "Optimization" advice; a sixth of the cost of each access-log line).
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    logger = logging.getLogger("app")
    for handler in list(logger.handlers):
        if getattr(handler, _OURS, False):
            logger.removeHandler(handler)
    handler = logging.StreamHandler()
    setattr(handler, _OURS, True)
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(JsonFormatter() if settings.log_json else TextFormatter())
    logger.addHandler(handler)
    logger.setLevel(settings.log_level.upper())
    return handler
