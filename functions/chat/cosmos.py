"""The app's own Cosmos DB client, for the writes a binding cannot express.

The Cosmos DB output binding only upserts (the extension's `CosmosDBAsyncCollector` calls `UpsertItemAsync`),
so it would let a write under a known id replace another author's message. SaveChat needs create-if-absent
(`create_item`: 409 when the id exists) and the rate limiter a conditional patch, so both go through the
azure-cosmos SDK (docs/api.md "Why SaveChat writes with the SDK").

Credentials come from the binding's own setting, `CosmosDBConnection`, so there is one source of truth:
a connection string locally (the emulator's key), identity-based settings in Azure (`__accountEndpoint`,
`__credential=managedidentity`, `__clientId`), so the app stays keyless there. The data-plane role the
bindings already need (Cosmos DB Built-in Data Contributor) covers these calls too."""

from __future__ import annotations

import asyncio
import logging
import os
import weakref
from collections.abc import AsyncIterator, Mapping
from typing import Any

from azure.core.exceptions import AzureError
from azure.cosmos.aio import ContainerProxy, CosmosClient

from .errors import ApiError

SETTING = "CosmosDBConnection"
DATABASE = "chat"
MESSAGES = "messages"
CONTROL = "control"
# A write that cannot finish in this time is reported to the caller (503), who retries with the same id.
TIMEOUT_SECONDS = 10


log = logging.getLogger(__name__)


class StoreUnavailable(Exception):
    """No setting to reach Cosmos DB with (a deployment error, logged; the caller answers 503)."""


def unavailable(what: str, error: AzureError | StoreUnavailable) -> ApiError:
    """A 503 the client retries (same id: the write is idempotent), and one log line for the operator
    (status and error type only: never the document)."""
    status = getattr(error, "status_code", None)
    log.warning("%s: Cosmos DB failed (%s%s)", what, type(error).__name__, f" {status}" if status else "")
    message = f"{what}: the store is unavailable, retry"
    return ApiError(503, "store_unavailable", message, None, {"Retry-After": "2"})


def _client(environ: Mapping[str, str]) -> CosmosClient:
    options: dict[str, Any] = {"timeout": TIMEOUT_SECONDS, "connection_timeout": 5}
    if environ.get(SETTING):
        return CosmosClient.from_connection_string(environ[SETTING], **options)
    endpoint = environ.get(f"{SETTING}__accountEndpoint")
    if not endpoint:
        raise StoreUnavailable(f"{SETTING} is not set (neither a connection string nor __accountEndpoint)")
    from azure.identity.aio import DefaultAzureCredential, ManagedIdentityCredential

    credential: Any
    if environ.get(f"{SETTING}__credential", "").lower() == "managedidentity":
        credential = ManagedIdentityCredential(client_id=environ.get(f"{SETTING}__clientId") or None)
    else:
        credential = DefaultAzureCredential()
    return CosmosClient(endpoint, credential=credential, **options)


def account(environ: Mapping[str, str] = os.environ) -> str:
    """Which Cosmos DB account the setting names (its connection string or endpoint): a cache key."""
    return environ.get(SETTING) or environ.get(f"{SETTING}__accountEndpoint", "")


# One client per event loop and setting, made on first use and kept: an aio client's connection pool belongs
# to the loop that made it (the worker runs one loop for its life; tests run many).
_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, CosmosClient]] = (
    weakref.WeakKeyDictionary()
)


def container(name: str, environ: Mapping[str, str] = os.environ) -> ContainerProxy:
    """A proxy for `chat/<name>`; making it does no I/O."""
    loop = asyncio.get_running_loop()
    per_loop = _clients.setdefault(loop, {})
    key = account(environ)
    client = per_loop.get(key)
    if client is None:
        client = per_loop[key] = _client(environ)
        _close_at_loop_shutdown(loop, client)
    return client.get_database_client(DATABASE).get_container_client(name)


async def _closing(client: CosmosClient) -> AsyncIterator[None]:
    try:
        yield
    finally:
        await client.close()


# Kept only so that a parked generator is not garbage-collected (and so closed) before its loop ends.
_closers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, list[Any]] = weakref.WeakKeyDictionary()


def _close_at_loop_shutdown(loop: asyncio.AbstractEventLoop, client: CosmosClient) -> None:
    """The worker gives an app no shutdown hook, so a pooled client would be left open when the loop ends
    (aiohttp's "Unclosed client session" at every stop). An async generator parked at its `yield` is one:
    `asyncio.run` (the worker's and the local host's way to run the loop) closes every such generator in
    `shutdown_asyncgens` before closing the loop, and the generator's `finally` closes the client."""
    closer = _closing(client)
    _closers.setdefault(loop, []).append(closer)
    loop.create_task(closer.__anext__())


async def close() -> None:
    """Close this loop's clients now (tests that stop the store they point at)."""
    for client in _clients.pop(asyncio.get_running_loop(), {}).values():
        await client.close()
