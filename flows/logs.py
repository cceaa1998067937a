"""Logs a machine can read: with CCHC_LOG_FORMAT=json every record of cchc and of
Prefect is one JSON object per line on stderr (for journald, Loki, a log shipper)."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

# Attributes every LogRecord has; anything else was passed as `extra=` and is kept.
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value if isinstance(value, str | int | float | bool) else str(value)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


_configured: set[str] = set()


def configure(fmt: str) -> None:
    """Route cchc's and Prefect's records through one JSON handler, or leave the text ones.
    Once per process: a second call would stack a second handler."""
    if fmt != "json" or fmt in _configured:
        return
    _configured.add(fmt)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers = [handler]  # libraries' records (GX, dbt adapters) too
    for name in ("flows", "prefect"):
        logger = logging.getLogger(name)
        logger.handlers = [handler]
        logger.propagate = False
        if logger.level == logging.NOTSET:
            logger.setLevel(logging.INFO)
    # Prefect's own child loggers carry their handlers; send them to the root of their tree
    for name, logger in logging.Logger.manager.loggerDict.items():
        if name.startswith("prefect.") and isinstance(logger, logging.Logger):
            logger.handlers = []
            logger.propagate = True
