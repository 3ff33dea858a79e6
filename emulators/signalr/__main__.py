"""``python -m emulators.signalr [--host H] [--port P] [--key K]``: run the emulator until SIGINT/SIGTERM.

``--child-of PID`` is how ``python -m emulators`` runs it in a process of its own (see ``process.py``):
the key comes as the first line of stdin (never in argv, where ``ps`` shows it); instead of the
banner, stdout gets one JSON line, ``{"port": N}`` once listening or ``{"errno": E, "error": "..."}``
if it cannot listen; it stops when stdin closes (the parent went away) and, on Linux, is killed
with its parent like the single process it replaces.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import signal
import sys

from . import WELL_KNOWN_ACCESS_KEY, start
from .logfmt import use_cached_time

DEFAULT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"


def _report(answer: dict[str, object]) -> None:
    sys.stdout.write(json.dumps(answer) + "\n")
    sys.stdout.flush()


def _die_with_parent(parent: int) -> None:
    """SIGKILL of the parent kills this process too, as it would have killed the one process."""
    if sys.platform.startswith("linux"):
        import ctypes

        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:  # gone before the line above took effect
        os._exit(1)


async def _watch_parent(stop: asyncio.Event) -> None:
    """stdin is the parent's pipe: end of file means the parent is gone (any platform, any death)."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    with contextlib.suppress(Exception):
        while await reader.read(4096):
            pass
    stop.set()


async def _serve(host: str, port: int, key: str, child: bool) -> int:
    try:
        emu = await start(host=host, port=port, key=key)
    except OSError as e:
        if not child:
            raise
        _report({"errno": e.errno, "error": e.strerror or str(e)})
        return 1
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    if child:
        _report({"port": emu.port})
        watcher = asyncio.create_task(_watch_parent(stop))
    else:
        shown = "the well-known emulator key" if key == WELL_KNOWN_ACCESS_KEY else "a custom key"
        print(f"SignalR emulator (serverless) on {emu.url}  AccessKey: {shown}  connection string: "
              f"Endpoint=http://{emu._url_host};Port={emu.port};AccessKey=...;Version=1.0;", flush=True)
    try:
        await stop.wait()
    finally:
        await emu.close()
        if child:
            watcher.cancel()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m emulators.signalr", description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8888, help="port (default 8888, 0 = any free port)")
    parser.add_argument("--key", default=WELL_KNOWN_ACCESS_KEY, help="AccessKey (default: well-known)")
    parser.add_argument("--log-level", default="INFO", help="INFO (default): a line per request")
    parser.add_argument("--log-format", default=DEFAULT_FORMAT, help=argparse.SUPPRESS)
    parser.add_argument("--child-of", type=int, metavar="PID",
                        help="run as part of `python -m emulators` (process PID); see the module doc")
    args = parser.parse_args(argv)
    key = args.key
    if args.child_of is not None:
        _die_with_parent(args.child_of)
        key = sys.stdin.readline().strip() or WELL_KNOWN_ACCESS_KEY
    logging.basicConfig(level=args.log_level.upper(), format=args.log_format)
    use_cached_time()  # a line per request: the date formatted once per second, not per line
    with contextlib.suppress(KeyboardInterrupt):
        return asyncio.run(_serve(args.host, args.port, key, args.child_of is not None))
    return 0


if __name__ == "__main__":
    sys.exit(main())
