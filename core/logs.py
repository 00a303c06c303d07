"""Structured logs: one line per event, service and device named, no secrets, no control chars.

A line looks like::

    2026-11-22T10:00:00.123Z info  polling device.down device=198.18.0.20 missed=3

Values that came from the network (device names, SNMP strings) are quoted and stripped of
control characters so a hostile name cannot forge log lines; :class:`Secret` values print as
``<hidden>``.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

from core.schema import Secret

_MAX_VALUE_CHARS = 300
_SAFE = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._:/-+@%,[]()")


def _fmt_value(value: Any) -> str:
    if isinstance(value, Secret):
        return "<hidden>"
    if isinstance(value, float):
        text = f"{value:.6g}"
    elif isinstance(value, bytes):
        text = value.decode("utf-8", "replace")
    else:
        text = str(value)
    text = "".join(ch if ch.isprintable() else "\ufffd" for ch in text)
    if len(text) > _MAX_VALUE_CHARS:
        text = text[:_MAX_VALUE_CHARS] + "…"
    if text and all(ch in _SAFE for ch in text):
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


class _LineFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        ms = int(record.msecs)
        service = getattr(record, "service", record.name)
        fields: dict[str, Any] = getattr(record, "fields", {})
        parts = [f"{ts}.{ms:03d}Z", f"{record.levelname.lower():5s}", service, record.getMessage()]
        parts += [f"{key}={_fmt_value(val)}" for key, val in fields.items()]
        line = " ".join(parts)
        if record.exc_info:
            # One event, one line: the traceback is folded onto it.
            exc = self.formatException(record.exc_info).replace("\n", " | ")
            line += f" exc={_fmt_value(exc)}"
        return line


class EventLog:
    """A logger bound to a service name: ``log.info("device.down", device=ip, missed=3)``."""

    def __init__(self, service: str) -> None:
        self.service = service
        self._logger = logging.getLogger(f"outpost.{service}")

    def _emit(self, level: int, event: str, exc: bool, fields: dict[str, Any]) -> None:
        if self._logger.isEnabledFor(level):
            self._logger.log(
                level, event, exc_info=exc, extra={"service": self.service, "fields": fields}
            )

    def debug(self, event: str, **fields: Any) -> None:
        self._emit(logging.DEBUG, event, False, fields)

    def info(self, event: str, **fields: Any) -> None:
        self._emit(logging.INFO, event, False, fields)

    def warning(self, event: str, **fields: Any) -> None:
        self._emit(logging.WARNING, event, False, fields)

    def error(self, event: str, **fields: Any) -> None:
        self._emit(logging.ERROR, event, False, fields)

    def exception(self, event: str, **fields: Any) -> None:
        """An error with the current exception's traceback folded onto the line."""
        self._emit(logging.ERROR, event, True, fields)


def get_log(service: str) -> EventLog:
    return EventLog(service)


def setup_logging(level: str = "info", stream: Any = None) -> None:
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(_LineFormatter())
    root = logging.getLogger("outpost")
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    root.propagate = False
