"""Log set-up shared by `python -m emulators` and `python -m emulators.functions`."""

from __future__ import annotations

import logging

FORMAT = "%(asctime)s %(name)s %(levelname)s %(message)s"


class _QuietSdk(logging.Filter):
    """azure-cosmos logs on the *root* logger at INFO on every change-feed poll ("'feed_range' empty.
    Using full range by default."), and azure-core dumps every request's headers; neither is news."""

    def filter(self, record: logging.LogRecord) -> bool:
        path = record.pathname.replace("\\", "/")
        return not (record.levelno < logging.WARNING and "/azure/" in path)


def configure(level: str | int = logging.INFO, quiet: tuple[str, ...] = ()) -> None:
    logging.basicConfig(level=level, format=FORMAT)
    for handler in logging.getLogger().handlers:
        handler.addFilter(_QuietSdk())
    logging.getLogger("azure").setLevel(logging.WARNING)
    for name in quiet:
        logging.getLogger(name).setLevel(logging.WARNING)
