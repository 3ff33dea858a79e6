"""``python -m emulators.signalr [--host H] [--port P] [--key K]``: run the emulator until SIGINT/SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal

from . import WELL_KNOWN_ACCESS_KEY, start


async def _serve(host: str, port: int, key: str) -> None:
    emu = await start(host=host, port=port, key=key)
    shown = "the well-known emulator key" if key == WELL_KNOWN_ACCESS_KEY else "a custom key"
    print(f"SignalR emulator (serverless) on {emu.url}  AccessKey: {shown}  "
          f"connection string: Endpoint=http://{emu._url_host};Port={emu.port};AccessKey=...;Version=1.0;",
          flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await emu.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m emulators.signalr", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8888, help="port (default 8888, 0 = any free port)")
    parser.add_argument("--key", default=WELL_KNOWN_ACCESS_KEY, help="AccessKey (default: well-known)")
    parser.add_argument("--log-level", default="INFO", help="INFO (default): a line per request")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s")
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(args.host, args.port, args.key))


if __name__ == "__main__":
    main()
