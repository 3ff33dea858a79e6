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
    from emulators.signalr.logfmt import use_cached_time

    logging.basicConfig(level=level, format=FORMAT)
    use_cached_time()  # the same lines, the date formatted once per second (a line per request)
    for handler in logging.getLogger().handlers:
        handler.addFilter(_QuietSdk())
    logging.getLogger("azure").setLevel(logging.WARNING)
    for name in quiet:
        logging.getLogger(name).setLevel(logging.WARNING)
