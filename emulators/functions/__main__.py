"""`python -m emulators.functions`: the local Functions host alone, configured by the app's settings
(`local.settings.json`, created from the sample when missing, with environment variables winning)."""

from __future__ import annotations

import argparse
import asyncio
import errno
import logging
import os
import signal
import sys
from pathlib import Path

from emulators.__main__ import port_number

from . import FunctionLoadError, SettingsError, logs, start
from .settings import HostSettings

ROOT = Path(__file__).resolve().parent.parent.parent
DEFAULT_PORT = 7071


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m emulators.functions", description=__doc__)
    p.add_argument("--app-dir", type=Path, default=ROOT / "functions",
                   help="the Function App (default functions/)")
    p.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=port_number, default=None,
                   help="HTTP port (default: local.settings.json Host.LocalHttpPort, else 7071)")
    p.add_argument("--log-level", default="INFO")
    return p.parse_args(argv)


async def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logs.configure(args.log_level.upper())
    # Before the "running" line: a person (or a script) may stop it the moment it is printed.
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        if args.port is None:
            # As Core Tools: `func start` listens on Host.LocalHttpPort unless told otherwise.
            settings = await asyncio.to_thread(HostSettings.load, args.app_dir)
            args.port = settings.local_http_port or DEFAULT_PORT
        host = await start(args.app_dir, host=args.host, port=args.port)
    except (FunctionLoadError, SettingsError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except OSError as e:
        if e.errno == errno.EADDRINUSE:
            print(f"error: port {args.port} (Functions host) is already in use", file=sys.stderr)
        else:
            print(f"error: cannot listen on {args.host}:{args.port}: {e.strerror or e}", file=sys.stderr)
        return 1
    print(f"Functions host running at {host.url}/ ({len(host.functions)} functions from {args.app_dir})",
          flush=True)
    await stop.wait()
    await host.close()
    if host.invoker.busy_threads:
        # Python cannot stop a thread, and a normal exit would wait for it: leave now.
        print(f"Functions host stopped ({host.invoker.busy_threads} sync function call(s) still running "
              "were abandoned)", flush=True)
        logging.shutdown()
        os._exit(0)
    print("Functions host stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
