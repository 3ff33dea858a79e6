"""A `logging.Formatter` with the same output that formats the date once per second, not per line.

Every request and invocation logs one line; under load (hundreds of lines a second) `time.strftime`
of the same second over and over was a visible part of the logging cost. Shared by the SignalR
emulator and the Functions host (`emulators.functions.logs`).
"""

from __future__ import annotations

import logging
import time


class CachedTimeFormatter(logging.Formatter):
    """`logging.Formatter`, with `formatTime` (default date format only) cached per second."""

    def __init__(self, fmt: str | None = None, datefmt: str | None = None) -> None:
        super().__init__(fmt, datefmt)
        self._second = -1
        self._text = ""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        if datefmt or self.default_time_format != logging.Formatter.default_time_format:
            return super().formatTime(record, datefmt)
        second = int(record.created)
        if second != self._second:
            self._text = time.strftime(self.default_time_format, self.converter(record.created))
            self._second = second
        return self.default_msec_format % (self._text, record.msecs)


def use_cached_time(logger: logging.Logger | None = None) -> None:
    """Give every handler of `logger` (default: the root) the cached formatter, same format."""
    for handler in (logger or logging.getLogger()).handlers:
        current = handler.formatter
        fmt = current._fmt if current is not None else None  # the format it was given
        datefmt = current.datefmt if current is not None else None
        handler.setFormatter(CachedTimeFormatter(fmt, datefmt))
