"""The local Functions host: settings → indexed app → HTTP server + change-feed consumers.

`start()` is the in-process API used by `python -m emulators` and the tests; it returns a running
`FunctionsHost` whose `close()` stops the consumers, the server and the clients in that order.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from aiohttp import web

from . import log_levels
from .cosmos_bindings import CosmosClients, CosmosInput, CosmosOutput
from .cosmos_trigger import ChangeFeedConsumer
from .http_server import HttpFrontDoor
from .invoker import Invoker
from .loader import FunctionDef, FunctionLoadError, ImportedScript, load_app
from .settings import HostSettings, SettingsError
from .signalr_bindings import SignalRClients, SignalRConnectionInfoInput, SignalROutput

log = logging.getLogger("emulators.functions")
SHUTDOWN_GRACE = 2.5  # aiohttp waits this twice (finish, then cancel) for requests in flight on stop

# `subscribe(database_id, container_id)` → object with `await wait(timeout) -> bool` and `close()`:
# the Cosmos emulator's in-process change notification.
ChangeNotifier = Callable[[str, str], Any]


class FunctionsHost:
    def __init__(self, app_dir: Path, settings: HostSettings, functions: list[FunctionDef],
                 change_notifier: ChangeNotifier | None = None,
                 notifier_endpoint: str | None = None) -> None:
        self.app_dir = app_dir
        self.settings = settings
        self.functions = functions
        self.cosmos = CosmosClients(settings)
        self.signalr = SignalRClients(settings)
        self.invoker = Invoker(
            str(app_dir),
            inputs={"cosmosDB": CosmosInput(self.cosmos),
                    "signalRConnectionInfo": SignalRConnectionInfoInput(self.signalr)},
            outputs={"cosmosDB": CosmosOutput(self.cosmos), "signalR": SignalROutput(self.signalr)},
            timeout=settings.function_timeout,
            max_workers=_thread_count(settings.get("PYTHON_THREADPOOL_THREAD_COUNT")),
        )
        self.front_door = HttpFrontDoor(settings, functions, self.invoker)
        self.change_notifier = change_notifier
        self.notifier_endpoint = notifier_endpoint
        self.consumers: list[ChangeFeedConsumer] = []
        levels = log_levels.from_host_json(settings.host_json)
        self._undo_log_levels = log_levels.install(levels) if levels else None
        self._runner: web.AppRunner | None = None
        self.url = ""
        self.port = 0
        self.imported: ImportedScript | None = None

    async def serve(self, host: str, port: int) -> None:
        # On stop, requests in flight get SHUTDOWN_GRACE seconds to finish, then are cancelled.
        self._runner = web.AppRunner(self.front_door.make_app(), access_log=None, handle_signals=False,
                                     shutdown_timeout=SHUTDOWN_GRACE)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port, reuse_address=True)
        await site.start()
        bound = self._runner.addresses[0][1] if self._runner.addresses else port
        shown = "127.0.0.1" if host in ("0.0.0.0", "") else host
        self.url = f"http://{shown}:{bound}"
        self.port = bound
        if not self.settings.get("WEBSITE_HOSTNAME"):
            # What Core Tools sets locally and App Service sets in Azure: this app's own host name.
            self.settings.set_override("WEBSITE_HOSTNAME", f"{shown}:{bound}")

    def start_triggers(self) -> None:
        for fd in self.functions:
            if fd.trigger.type != "cosmosDBTrigger":
                continue
            notifier = None
            setting = fd.trigger.get("connection") or "CosmosDBConnection"
            if (self.change_notifier is not None and self.notifier_endpoint
                    and self.cosmos.endpoint(setting).rstrip("/") == self.notifier_endpoint.rstrip("/")):
                notifier = self.change_notifier
            consumer = ChangeFeedConsumer(fd, self.cosmos, self.invoker, notifier=notifier)
            token = log_levels.CURRENT_FUNCTION.set(fd.name)  # the consumer's task inherits it
            try:
                consumer.start()
            finally:
                log_levels.CURRENT_FUNCTION.reset(token)
            self.consumers.append(consumer)

    async def close(self) -> None:
        for consumer in self.consumers:
            await consumer.stop()
        if self._runner is not None:
            await self._runner.cleanup()
        await self.cosmos.close()
        await self.signalr.close()
        self.invoker.close()
        self.settings.restore_environ()
        if self._undo_log_levels is not None:
            self._undo_log_levels()
        if self.imported is not None:
            self.imported.unload()


def _thread_count(value: str | None) -> int | None:
    """The worker's sync-handler pool size; unset = Python's default (min(32, CPUs + 4))."""
    if not value:
        return None
    try:
        n = int(value)
    except ValueError:
        raise SettingsError(f"PYTHON_THREADPOOL_THREAD_COUNT must be a whole number, got {value!r}") from None
    if n < 1:
        raise SettingsError(f"PYTHON_THREADPOOL_THREAD_COUNT must be at least 1, got {n}")
    return n


async def start(app_dir: Path | str = "functions", host: str = "127.0.0.1", port: int = 7071,
                settings_overrides: Mapping[str, str] | None = None,
                change_notifier: ChangeNotifier | None = None,
                notifier_endpoint: str | None = None,
                create_local_settings: bool = True) -> FunctionsHost:
    """Load the app, bind the port, start the change-feed consumers. Raises FunctionLoadError /
    SettingsError / OSError (port in use) without leaving anything running."""
    def prepare() -> tuple[HostSettings, list[FunctionDef], ImportedScript]:
        # File reads and the app import are blocking: done off the event loop, in start-up order
        # (the app may read its settings from the environment at import time).
        settings = HostSettings.load(Path(app_dir), settings_overrides, create_local_settings)
        settings.apply_to_environ()
        try:
            functions, imported = load_app(settings.app_dir, settings.get)
        except BaseException:
            settings.restore_environ()
            raise
        return settings, functions, imported

    settings, functions, imported = await asyncio.get_running_loop().run_in_executor(None, prepare)
    try:
        fh = FunctionsHost(settings.app_dir, settings, functions, change_notifier, notifier_endpoint)
    except BaseException:
        settings.restore_environ()
        imported.unload()
        raise
    fh.imported = imported
    try:
        # Triggers first: a lease without a checkpoint starts from its consumer's start (less 1 s), which
        # must precede every request this host acknowledges.
        fh.start_triggers()
        await fh.serve(host, port)
    except BaseException:
        await fh.close()
        raise
    names = ", ".join(f.name for f in functions)
    log.info("Functions host: %d functions (%s) at %s", len(functions), names, fh.url)
    return fh


__all__ = ["FunctionLoadError", "FunctionsHost", "start"]
