"""`python -m emulators` (what `make run` starts): the whole chat on one machine, in two processes.

Starts the Cosmos DB emulator (8081) and the local Functions host (7071) serving `functions/` on one
event loop, and the SignalR Service emulator (8888) in a child process of its own, so its WebSocket
fan-out runs on another core (`--one-process` keeps all three on one loop, as it used to be). The
Cosmos DB emulator and the host must share a process: its change notification wakes the host's
change-feed trigger in-process. Creates database `chat` with containers `messages` (/room),
`leases` (/id) and `control` (/id) if missing; the host's connection settings follow the ports chosen
here. Data lives in `.data/` and survives restarts (`--in-memory` keeps none). Ctrl-C or SIGTERM stops
everything cleanly; if the SignalR emulator's process dies, that is reported and everything stops (exit 1).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import json
import logging
import os
import signal
import socket
import sys
import time
from pathlib import Path
from typing import Any

# "Ready in" counts from here, before the emulators and the app are imported: that is most of what
# a person waits for.
STARTED = time.perf_counter()
ROOT = Path(__file__).resolve().parent.parent
DATABASE = "chat"
# name → (partition key path, default TTL): `control` holds the app's rate-limit windows (own `ttl` each)
# and identity signing key (no `ttl`), as infra/data.py declares it.
CONTAINERS: dict[str, tuple[str, int | None]] = {
    "messages": ("/room", None),
    "leases": ("/id", None),
    "control": ("/id", -1),
}


class StartupError(RuntimeError):
    """A one-line reason the stack cannot start."""


def port_number(text: str) -> int:
    """argparse type: a TCP port (0 = any free one)."""
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is not a port number (0-65535)")
    return port


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m emulators", description=__doc__.split("\n\n")[0])
    p.add_argument("--host", default="127.0.0.1", help="interface for all three servers (default 127.0.0.1)")
    p.add_argument("--port", type=port_number, default=7071, help="Functions host / chat port (default 7071)")
    p.add_argument("--cosmos-port", type=port_number, default=8081,
                   help="Cosmos DB emulator port (default 8081)")
    p.add_argument("--signalr-port", type=port_number, default=8888,
                   help="SignalR emulator port (default 8888)")
    p.add_argument("--in-memory", action="store_true", help="keep no data (default: persist in --data-dir)")
    p.add_argument("--data-dir", type=Path, default=ROOT / ".data", help="where data lives (default .data/)")
    p.add_argument("--app-dir", type=Path, default=ROOT / "functions",
                   help="the Function App (default functions/)")
    p.add_argument("--verbose", action="store_true", help="also log every Cosmos DB emulator request")
    p.add_argument("--one-process", action="store_true",
                   help="run the SignalR emulator on the same event loop as the others (e.g. for a profiler)")
    args = p.parse_args(argv)
    args.data_dir = Path(args.data_dir).resolve()
    return args


def configure_logging(verbose: bool) -> None:
    from emulators.functions import logs

    # Unless asked, the Cosmos DB emulator's per-request lines (every binding call and change-feed
    # read) would bury the host's one line per invocation.
    logs.configure(logging.INFO, quiet=() if verbose else ("emulators.cosmos",))


async def _started(what: str, port: int, coro: Any) -> Any:
    try:
        return await coro
    except OSError as e:
        if e.errno == errno.EADDRINUSE:
            raise StartupError(f"port {port} ({what}) is already in use") from None
        raise StartupError(f"{what} cannot listen on port {port}: {e.strerror or e}") from None


def check_ports_free(host: str, ports: dict[str, int]) -> None:
    """Fail before starting anything, so a busy port is the only thing printed."""
    for what, port in ports.items():
        if port == 0:
            continue
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind((host, port))
            except OSError as e:
                if e.errno == errno.EADDRINUSE:
                    raise StartupError(f"port {port} ({what}) is already in use") from None
                raise StartupError(f"{what} cannot listen on {host}:{port}: {e.strerror or e}") from None


def load_settings(app_dir: Path) -> Any:
    """Read host.json and local.settings.json (creating the latter from the sample) before any
    server starts, so a malformed file is the only thing printed."""
    from emulators.functions import SettingsError
    from emulators.functions.settings import HostSettings

    try:
        return HostSettings.load(Path(app_dir))
    except SettingsError as e:
        raise StartupError(str(e)) from None
    except OSError as e:
        raise StartupError(f"cannot read the Function App in {app_dir}: {e.strerror or e}") from None


def missing_web_client(app_dir: Path, www_root: str | None = None) -> str | None:
    """Why the chat page would open but never connect: the web client loads @microsoft/signalr from
    www/node_modules, which `make run` installs but `python -m emulators` alone does not."""
    app_dir = Path(app_dir)
    candidates = [Path(www_root)] if www_root else [app_dir / "www", app_dir.parent / "www"]
    www = next((c for c in candidates if (c / "package.json").is_file()), None)
    if www is None:
        return None
    try:
        deps = json.loads((www / "package.json").read_text(encoding="utf-8")).get("dependencies") or {}
    except (OSError, ValueError, AttributeError):
        return None
    missing = sorted(n for n in deps if not (www / "node_modules" / n / "package.json").is_file())
    if not missing:
        return None
    return (f"warning: {', '.join(missing)} not installed in {www / 'node_modules'}: the chat page will not "
            f"connect. Run `make install` (or `cd {www} && npm ci`).")


def check_app(app_dir: Path) -> str | None:
    """Settings files first (a one-line error), then a warning if the web client is not installed."""
    settings = load_settings(app_dir)
    script = Path(app_dir) / (settings.get("PYTHON_SCRIPT_FILE_NAME") or "function_app.py")
    if not script.is_file():
        raise StartupError(f"{script} not found: --app-dir must be a Python v2 Function App")
    return missing_web_client(app_dir, settings.get("WWW_ROOT"))


async def ensure_containers(cosmos_url: str, key: str) -> None:
    from azure.cosmos import PartitionKey
    from azure.cosmos.aio import CosmosClient

    async with CosmosClient(cosmos_url, credential=key) as client:
        db = await client.create_database_if_not_exists(DATABASE)
        for name, (path, ttl) in CONTAINERS.items():
            await db.create_container_if_not_exists(
                name, partition_key=PartitionKey(path=path), default_ttl=ttl
            )


class Stack:
    """The three servers, started in dependency order and closed in reverse. The SignalR emulator
    runs in a child process (started first, so its imports overlap the Cosmos DB emulator's start)
    unless `args.one_process`."""

    def __init__(self) -> None:
        self.cosmos: Any = None
        self.signalr: Any = None
        self.functions: Any = None
        self.warnings: list[str] = []

    async def _start_signalr(self, args: argparse.Namespace) -> Any:
        from emulators.functions import logs
        from emulators.signalr import WELL_KNOWN_ACCESS_KEY
        from emulators.signalr import start as start_signalr
        from emulators.signalr.process import start_process

        if getattr(args, "one_process", False):
            starting = start_signalr(host=args.host, port=args.signalr_port, key=WELL_KNOWN_ACCESS_KEY)
        else:
            starting = start_process(host=args.host, port=args.signalr_port, key=WELL_KNOWN_ACCESS_KEY,
                                     log_level=logging.getLogger("emulators.signalr").getEffectiveLevel(),
                                     log_format=logs.FORMAT)
        try:
            return await _started("SignalR emulator", args.signalr_port, starting)
        except RuntimeError as e:  # the child died or said nothing: one line, not a traceback
            raise StartupError(str(e)) from None

    async def start(self, args: argparse.Namespace) -> None:
        from emulators.cosmos import WELL_KNOWN_KEY
        from emulators.cosmos import start as start_cosmos
        from emulators.functions import FunctionLoadError, SettingsError
        from emulators.functions import start as start_functions

        check_ports_free(args.host, {"Cosmos DB emulator": args.cosmos_port,
                                     "SignalR emulator": args.signalr_port, "Functions host": args.port})
        web_client = await asyncio.to_thread(check_app, args.app_dir)
        if web_client:
            self.warnings.append(web_client)
        data_dir = None if args.in_memory else Path(args.data_dir) / "cosmos"
        if data_dir is not None:
            data_dir.mkdir(parents=True, exist_ok=True)
        signalr = asyncio.create_task(self._start_signalr(args))
        try:
            self.cosmos = await _started("Cosmos DB emulator", args.cosmos_port, start_cosmos(
                host=args.host, port=args.cosmos_port, data_dir=data_dir, key=WELL_KNOWN_KEY))
            await ensure_containers(self.cosmos.url, WELL_KNOWN_KEY)
        except BaseException:
            # The SignalR part, once started, is ours to close; its own error is not the news here.
            with contextlib.suppress(Exception):
                self.signalr = await signalr
            raise
        self.signalr = await signalr
        overrides = {
            "CosmosDBConnection": self.cosmos.connection_string,
            "AzureSignalRConnectionString": self.signalr.connection_string,
        }
        try:
            self.functions = await _started("Functions host", args.port, start_functions(
                args.app_dir, host=args.host, port=args.port, settings_overrides=overrides,
                change_notifier=self.cosmos.subscribe, notifier_endpoint=self.cosmos.url))
        except (FunctionLoadError, SettingsError) as e:
            raise StartupError(str(e)) from None

    async def close(self) -> None:
        for part in (self.functions, self.signalr, self.cosmos):
            if part is not None:
                try:
                    await part.close()
                except Exception as e:  # keep closing the others
                    logging.getLogger("emulators").warning("closing %s: %s", type(part).__name__, e)


async def until_stopped(stack: Stack, stop: asyncio.Event) -> int:
    """Wait for Ctrl-C/SIGTERM (→ 0) or for the SignalR emulator's process to die (→ reported, 1): a
    chat that stores messages but can no longer deliver them must not look alive."""
    waits: set[asyncio.Future[Any]] = {asyncio.ensure_future(stop.wait())}
    exited = getattr(stack.signalr, "exited", None)
    if exited is not None:
        waits.add(exited)
    done, pending = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    for w in pending:
        if w is not exited:
            w.cancel()
    if exited is not None and exited in done and not stop.is_set():
        from emulators.signalr.process import describe_exit

        print(f"error: the SignalR emulator's process stopped on its own ({describe_exit(exited.result())}); "
              "stopping Cosmic Chat", file=sys.stderr, flush=True)
        return 1
    return 0


async def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    configure_logging(args.verbose)
    stack = Stack()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stack.start(args)
    except StartupError as e:
        await stack.close()
        print(f"error: {e}", file=sys.stderr, flush=True)
        return 1
    except BaseException:
        await stack.close()
        raise
    where = "in memory (nothing kept)" if args.in_memory else f"data in {args.data_dir}"
    ready = time.perf_counter() - STARTED
    print(f"Cosmic Chat is running at {stack.functions.url}/  (ready in {ready:.1f} s; "
          f"Cosmos DB emulator {stack.cosmos.url}, SignalR emulator {stack.signalr.url}; {where}). "
          "Ctrl-C stops it.", flush=True)
    for warning in stack.warnings:
        print(warning, file=sys.stderr, flush=True)
    status = await until_stopped(stack, stop)
    await stack.close()
    busy = stack.functions.invoker.busy_threads if stack.functions is not None else 0
    if busy:
        # Python cannot stop a thread, and a normal exit would wait for it: leave now.
        print(f"Cosmic Chat stopped ({busy} sync function call(s) still running were abandoned)", flush=True)
        logging.shutdown()
        os._exit(status)
    print("Cosmic Chat stopped", flush=True)
    return status


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
