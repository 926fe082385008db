"""Structured logging: one JSON object per line, one line per event.

Callers pass named fields, never whole requests, so secrets (tokens, passwords,
signatures, auth tokens) only reach a log if someone names them — and the
formatter drops any field whose name says it is a secret, as a last guard.
"""

from __future__ import annotations

import functools
import json
import logging
import sys
import time
from typing import Any

_SECRET_WORDS = ("password", "token", "secret", "signature", "authorization", "cookie")
_RESERVED = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message"}
# One encoder for every line: json.dumps with options builds a new one per call.
_ENCODER = json.JSONEncoder(default=str, ensure_ascii=False)


@functools.lru_cache(maxsize=256)
def _is_secret(name: str) -> bool:
    lowered = name.lower()
    return any(word in lowered for word in _SECRET_WORDS)


class JsonFormatter(logging.Formatter):
    _second = -1
    _second_text = ""

    def _timestamp(self, created: float, msecs: float) -> str:
        """ISO 8601 UTC to the millisecond; strftime once per second, not once per line."""
        second = int(created)
        if second != self._second:
            self._second_text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            self._second = second
        return f"{self._second_text}.{int(msecs):03d}Z"

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": self._timestamp(record.created, record.msecs),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": getattr(record, "event", None) or record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if fields is None:
            fields = {k: v for k, v in vars(record).items() if k not in _RESERVED}
        for key, value in fields.items():
            if key in ("event", "color_message"):
                continue
            entry[key] = "[redacted]" if _is_secret(key) else value
        if record.exc_info and record.exc_info[0] is not None:
            # Type only: a traceback can quote request data.
            entry["exception"] = record.exc_info[0].__name__
        return _ENCODER.encode(entry)


def configure(level: str = "INFO") -> None:
    """Route every logger (ours, uvicorn's, alembic's) through the JSON formatter."""
    # The formatter writes none of these: not collecting them saves a frame walk and three
    # lookups per line (the logging HOWTO's "Optimization").
    logging._srcfile = None  # type: ignore[attr-defined]
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "alembic"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True
    logging.getLogger("alembic").setLevel(logging.WARNING)


def event(
    logger: logging.Logger, name: str, *, level: int = logging.INFO, **fields: object
) -> None:
    """Log one event with named fields."""
    logger.log(level, name, extra={"event": name, "fields": fields})
