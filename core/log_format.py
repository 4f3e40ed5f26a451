"""A readable log line for development: ``12:04:05 INFO  fairshare.request: request
method=GET path=/ status=200 duration_ms=3.1``. Servers keep JSON lines (``LOG_FORMAT=json``,
the default without DEBUG); a developer's terminal (``make demo``) gets these."""

from __future__ import annotations

import logging

# What every LogRecord has: anything else on a record came from ``extra=`` and is shown.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "taskName"}


class ReadableFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s", datefmt="%H:%M:%S")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        extras = [f"{key}={value}" for key, value in vars(record).items()
                  if key not in _STANDARD and not key.startswith("_") and value not in ("", None)]
        return f"{line} {' '.join(extras)}" if extras else line
