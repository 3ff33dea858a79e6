"""``python -m emulators.cosmos``: serve the Cosmos DB emulator until SIGINT/SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
from pathlib import Path

from . import WELL_KNOWN_KEY, start


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m emulators.cosmos", description=__doc__)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8081)
    p.add_argument("--data-dir", type=Path, default=Path(".data/cosmos"))
    p.add_argument("--in-memory", action="store_true", help="keep nothing on disk")
    p.add_argument("--key", default=WELL_KNOWN_KEY, help="account master key (base64)")
    p.add_argument(
        "--fsync",
        action="store_true",
        help="fsync every commit (survives power loss, not just a killed process); slower writes",
    )
    p.add_argument("--log-level", default="INFO")
    return p.parse_args(argv)


async def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(name)s %(levelname)s %(message)s")
    data_dir = None if args.in_memory else args.data_dir
    emu = await start(host=args.host, port=args.port, data_dir=data_dir, key=args.key, fsync=args.fsync)
    where = "in memory, nothing kept" if data_dir is None else f"data in {data_dir.resolve()}"
    print(f"Cosmos DB emulator listening on {emu.url} ({where})", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await emu.close()
    print("Cosmos DB emulator stopped", flush=True)


if __name__ == "__main__":
    asyncio.run(main())
