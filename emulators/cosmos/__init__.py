"""Cosmos DB for NoSQL gateway emulator: the official azure-cosmos SDK talks to it unmodified.

In-process use::

    emu = await start(port=0, data_dir=None)      # None = in memory
    sub = emu.subscribe("db", "container")         # wake-ups when that container changes
    await sub.wait(1.0)
    await emu.close()
"""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

from aiohttp import web

from .auth import WELL_KNOWN_KEY, Authenticator
from .notify import NotificationHub, Subscription
from .server import CosmosApp, StoreRunner
from .store import Store

__all__ = ["WELL_KNOWN_KEY", "Emulator", "Subscription", "start"]


class Emulator:
    """A running emulator: its URL, connection string, change subscriptions and shutdown."""

    def __init__(
        self,
        runner: web.AppRunner,
        store_runner: StoreRunner,
        hub: NotificationHub,
        host: str,
        port: int,
        key: str,
        data_dir: Path | None,
    ) -> None:
        self._runner = runner
        self._store_runner = store_runner
        self._hub = hub
        self.host = host
        self.port = port
        self.key = key
        self.data_dir = data_dir

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"

    @property
    def connection_string(self) -> str:
        return f"AccountEndpoint={self.url};AccountKey={self.key};"

    def subscribe(self, database_id: str, container_id: str) -> Subscription:
        return self._hub.subscribe(database_id, container_id)

    async def close(self) -> None:
        await self._runner.cleanup()
        # Closing SQLite checkpoints the WAL: done off the loop like every other store call.
        await asyncio.get_running_loop().run_in_executor(None, self._store_runner.close)


async def start(
    host: str = "127.0.0.1",
    port: int = 8081,
    data_dir: Path | None = None,
    key: str = WELL_KNOWN_KEY,
    read_only_key: str | None = None,
    fsync: bool = False,
) -> Emulator:
    """Open (or create) the store and serve it; ``port=0`` binds an ephemeral port (see ``emu.url``)."""
    auth = Authenticator(key, read_only_key)
    data = Path(data_dir) if data_dir is not None else None
    store_runner = StoreRunner(lambda: Store(data, fsync=fsync))
    hub = NotificationHub()
    app = CosmosApp(store_runner, auth, hub).build()
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        await runner.cleanup()
        store_runner.close()
        raise
    sock.listen(128)
    sock.setblocking(False)
    site = web.SockSite(runner, sock)
    await site.start()
    return Emulator(runner, store_runner, hub, host, sock.getsockname()[1], key, data)
