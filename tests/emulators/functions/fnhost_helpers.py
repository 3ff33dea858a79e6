"""Helpers for the binding and trigger tests: both emulators in-process, a host over a test app."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

from azure.cosmos import PartitionKey
from azure.cosmos.aio import CosmosClient

from emulators.cosmos import WELL_KNOWN_KEY
from emulators.cosmos import start as start_cosmos
from emulators.functions import start
from emulators.signalr import start as start_signalr

APPS = Path(__file__).parent / "apps"
DB = "testdb"


async def start_services() -> tuple[Any, Any]:
    """An in-memory Cosmos DB emulator with `testdb` / `messages` (/room) and `leases` (/id), and a
    SignalR emulator, both on ephemeral ports."""
    cosmos = await start_cosmos(port=0, data_dir=None)
    signalr = await start_signalr(port=0)
    async with CosmosClient(cosmos.url, credential=WELL_KNOWN_KEY) as client:
        db = await client.create_database_if_not_exists(DB)
        await db.create_container_if_not_exists("messages", partition_key=PartitionKey(path="/room"))
        await db.create_container_if_not_exists("leases", partition_key=PartitionKey(path="/id"))
    return cosmos, signalr


async def start_host(cosmos: Any, signalr: Any, app: str | Path = "bindings", notify: bool = True,
                     settings: dict[str, str] | None = None) -> Any:
    """A host over `apps/<app>` (or the app directory `app`), connected to both emulators."""
    return await start(APPS / app, port=0, create_local_settings=False, settings_overrides={
        "CosmosDBConnection": cosmos.connection_string,
        "AzureSignalRConnectionString": signalr.connection_string,
        "DB_NAME": DB,
        **(settings or {}),
    }, change_notifier=cosmos.subscribe if notify else None, notifier_endpoint=cosmos.url)


def write_app(app_dir: Path, body: str) -> Path:
    """A one-file test app: `body` after `import azure.functions as func` / `app = func.FunctionApp()`."""
    app_dir.mkdir(parents=True, exist_ok=True)
    (app_dir / "host.json").write_text('{"version": "2.0"}')
    (app_dir / "function_app.py").write_text(
        "import azure.functions as func\n\napp = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)\n"
        "SEEN = []\n\n" + body)
    return app_dir


async def read_all(cosmos: Any, container: str = "messages") -> list[dict[str, Any]]:
    async with CosmosClient(cosmos.url, credential=WELL_KNOWN_KEY) as client:
        c = client.get_database_client(DB).get_container_client(container)
        return [d async for d in c.read_all_items()]


async def upsert(cosmos: Any, *docs: dict[str, Any]) -> None:
    """Write straight to the emulator, as another writer would."""
    async with CosmosClient(cosmos.url, credential=WELL_KNOWN_KEY) as client:
        c = client.get_database_client(DB).get_container_client("messages")
        for doc in docs:
            await c.upsert_item(doc)


async def wait_until(predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            return False
        await asyncio.sleep(0.02)
    return True
