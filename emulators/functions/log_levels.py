"""host.json `logging.logLevel`: which lines about which function are written, by category, as in Azure.

Categories as the Functions host names them: `Function.<Name>` for the host's line about an invocation,
`Function.<Name>.User` for what the app logs while that function runs, `Host.General` for the host's
other lines. The longest configured prefix of a line's category decides (compared without case), else
`default`. Levels: Trace, Debug, Information, Warning, Error, Critical, None. Lines from the emulators'
other parts, the SDKs and aiohttp are not the Functions host's, and pass untouched.

Which function a line belongs to is known from a context variable set around each HTTP invocation and
inherited by each change-feed consumer's task (and, through the invoker's copied context, by sync
handlers in threads).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from typing import Any

from .settings import SettingsError

CURRENT_FUNCTION: ContextVar[str | None] = ContextVar("functions_current_function", default=None)

TRACE = 5
LEVELS = {
    "trace": TRACE,
    "debug": logging.DEBUG,
    "information": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "critical": logging.CRITICAL,
    "none": logging.CRITICAL + 10,
}
_NOT_THE_HOSTS = ("emulators.", "aiohttp", "azure", "asyncio", "urllib3")


def from_host_json(host_json: Mapping[str, Any]) -> dict[str, int] | None:
    """`{category (lower case): level}` from `logging.logLevel`, or None when host.json sets none."""
    section = (host_json.get("logging") or {}).get("logLevel")
    if not section:
        return None
    if not isinstance(section, dict):
        raise SettingsError("host.json logging.logLevel must be an object of category: level")
    levels: dict[str, int] = {}
    for category, name in section.items():
        level = LEVELS.get(str(name).strip().lower())
        if level is None:
            raise SettingsError(
                f"host.json logging.logLevel.{category}: {name!r} is not a level "
                f"({', '.join(n.capitalize() for n in LEVELS)})"
            )
        levels[str(category).lower()] = level
    return levels


def category(record: logging.LogRecord) -> str | None:
    function = CURRENT_FUNCTION.get()
    if record.name == "emulators.functions" or record.name.startswith("emulators.functions."):
        return f"Function.{function}" if function else "Host.General"
    if record.name.startswith(_NOT_THE_HOSTS):
        return None
    return f"Function.{function}.User" if function else None


class CategoryFilter(logging.Filter):
    """`floor`: the level lines outside the host's categories keep (the root level before `install`)."""

    def __init__(self, levels: Mapping[str, int], floor: int = logging.NOTSET) -> None:
        super().__init__()
        self.levels = dict(levels)
        self.default = self.levels.get("default", logging.INFO)
        self.floor = floor

    def level_for(self, name: str) -> int:
        key = name.lower()
        while True:
            if key in self.levels:
                return self.levels[key]
            if "." not in key:
                return self.default
            key = key.rsplit(".", 1)[0]

    def filter(self, record: logging.LogRecord) -> bool:
        name = category(record)
        if name is None:
            return record.levelno >= self.floor
        return record.levelno >= self.level_for(name)


def install(levels: Mapping[str, int]) -> Callable[[], None]:
    """Filter every root handler; returns the undo (the host calls it when it stops). A level below the
    root logger's lowers it, so that the lines asked for are created at all."""
    root = logging.getLogger()
    flt = CategoryFilter(levels, floor=root.getEffectiveLevel())
    handlers = list(root.handlers)
    for handler in handlers:
        handler.addFilter(flt)
    previous = root.level
    lowest = min(levels.values())
    if lowest < root.getEffectiveLevel():
        root.setLevel(lowest)

    def undo() -> None:
        for handler in handlers:
            handler.removeFilter(flt)
        root.setLevel(previous)

    return undo
