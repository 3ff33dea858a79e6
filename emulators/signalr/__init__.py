"""Azure SignalR Service emulator (serverless mode) that the official clients use unmodified.

    emu = await start(host="127.0.0.1", port=8888, key=WELL_KNOWN_ACCESS_KEY)
    emu.url, emu.connection_string
    await emu.close()
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from .app import create_app
from .hub import Limits, ServiceState

__all__ = ["WELL_KNOWN_ACCESS_KEY", "Emulator", "Endpoint", "Limits", "start"]

# The official emulator's key (Azure/azure-signalr Microsoft.Azure.SignalR.Emulator): local use only.
WELL_KNOWN_ACCESS_KEY = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789ABCDEFGH"

log = logging.getLogger("emulators.signalr")


@dataclass
class Endpoint:
    """Where an emulator listens: its URL and the connection string an app uses (the real port when
    started on port 0), whether it runs in this process or in a child (``process.EmulatorProcess``)."""

    host: str
    port: int
    key: str

    @property
    def url(self) -> str:
        return f"http://{self._url_host}:{self.port}"

    @property
    def _url_host(self) -> str:
        if self.host in ("0.0.0.0", "::", ""):
            return "127.0.0.1"
        return f"[{self.host}]" if ":" in self.host else self.host

    @property
    def connection_string(self) -> str:
        return f"Endpoint=http://{self._url_host};Port={self.port};AccessKey={self.key};Version=1.0;"


@dataclass
class Emulator(Endpoint):
    """A running emulator in this process."""

    state: ServiceState
    runner: web.AppRunner

    def stats(self) -> dict[str, Any]:
        return self.state.snapshot()

    async def close(self) -> None:
        await self.runner.cleanup()


async def start(host: str = "127.0.0.1", port: int = 8888, key: str = WELL_KNOWN_ACCESS_KEY,
                limits: Limits | None = None, **overrides: Any) -> Emulator:
    """Start serving; ``limits`` or overrides of its fields (``client_timeout=2``) shorten timeouts."""
    limits = limits or Limits()
    for name, value in overrides.items():
        if not hasattr(limits, name):
            raise TypeError(f"start() got an unknown option {name!r}")
        setattr(limits, name, value)
    state = ServiceState(limits)
    runner = web.AppRunner(create_app(state, key), handler_cancellation=True, access_log=None,
                           shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, host, port, backlog=4096)
    await site.start()
    server = site._server  # aiohttp exposes no public accessor for the bound socket
    actual = server.sockets[0].getsockname()[1] if server is not None and server.sockets else port
    log.info("SignalR emulator listening on http://%s:%d", host, actual)
    return Emulator(host, actual, key, state, runner)
