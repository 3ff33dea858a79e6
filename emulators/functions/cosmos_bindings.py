"""Cosmos DB input and output bindings over `azure.cosmos.aio`, like the Functions extension 4.x.

They talk to whatever the connection setting points at (the emulator by default, a real account
when given its connection string). Input: point read by `id` (+ `partitionKey`), or a query whose
`{tokens}` become SQL parameters, never SQL text. Output: one document or a list, each upserted.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

from azure.core.pipeline.transport import AioHttpTransport
from azure.cosmos import PartitionKey
from azure.cosmos import exceptions as cosmos_errors
from azure.cosmos.aio import CosmosClient

from . import conversion, expressions
from .conversion import Datum
from .loader import BindingSpec, FunctionDef
from .settings import HostSettings

log = logging.getLogger("emulators.functions")


class CosmosConnectionError(RuntimeError):
    """The connection setting is missing or unusable; names the setting, never its value."""


def parse_connection_string(value: str) -> dict[str, str]:
    parts: dict[str, str] = {}
    for item in value.split(";"):
        if not item.strip():
            continue
        key, sep, val = item.partition("=")
        if not sep:
            raise ValueError("expected Key=Value pairs separated by ';'")
        parts[key.strip().lower()] = val.strip()
    return parts


def _transport() -> AioHttpTransport:
    """azure-core's default transport honours proxy variables and ~/.netrc, which aiohttp then looks up
    on every request (about 5% of a SaveChat's CPU here); the host's own binding calls do not use either."""
    return AioHttpTransport(use_env_settings=False)


class CosmosClients:
    """One `CosmosClient` per connection setting, shared by every binding and trigger using it."""

    def __init__(self, settings: HostSettings) -> None:
        self.settings = settings
        self._clients: dict[str, CosmosClient] = {}

    def endpoint(self, setting: str) -> str:
        value = self.settings.get(setting)
        if value:
            return parse_connection_string(value).get("accountendpoint", "")
        return self.settings.get(f"{setting}__accountEndpoint") or ""

    def client(self, setting: str) -> CosmosClient:
        if setting in self._clients:
            return self._clients[setting]
        value = self.settings.get(setting)
        if value:
            try:
                parts = parse_connection_string(value)
            except ValueError as e:
                raise CosmosConnectionError(
                    f"connection setting {setting!r} is not a connection string: {e}") from None
            if "accountendpoint" not in parts or "accountkey" not in parts:
                raise CosmosConnectionError(
                    f"connection setting {setting!r} needs AccountEndpoint=...;AccountKey=...;")
            client = CosmosClient(parts["accountendpoint"], credential=parts["accountkey"],
                                  transport=_transport())
        elif self.settings.get(f"{setting}__accountEndpoint"):
            # Identity-based connection, as in Azure: the endpoint setting plus a token credential.
            from azure.identity.aio import DefaultAzureCredential

            client = CosmosClient(self.settings.get(f"{setting}__accountEndpoint") or "",
                                  credential=DefaultAzureCredential(), transport=_transport())
        else:
            raise CosmosConnectionError(
                f"connection setting {setting!r} is not set (nor {setting}__accountEndpoint)")
        self._clients[setting] = client
        return client

    def container(self, binding: BindingSpec, data: Mapping[str, Any], database: str | None = None,
                  container: str | None = None) -> Any:
        setting = binding.get("connection") or "CosmosDBConnection"
        db = database or expressions.resolve(str(binding.get("databaseName")), data)
        coll = container or expressions.resolve(str(binding.get("containerName")), data)
        return self.client(setting).get_database_client(db).get_container_client(coll)

    async def close(self) -> None:
        for client in self._clients.values():
            await client.close()
        self._clients.clear()


class CosmosInput:
    def __init__(self, clients: CosmosClients) -> None:
        self.clients = clients

    async def read(self, fd: FunctionDef, binding: BindingSpec, data: Mapping[str, Any]) -> Datum:
        container = self.clients.container(binding, data)
        pk_template = binding.get("partitionKey")
        pk = expressions.resolve(str(pk_template), data) if pk_template is not None else None
        id_template = binding.get("id")
        if id_template is not None:
            doc_id = expressions.resolve(str(id_template), data)
            try:
                doc = await container.read_item(doc_id, partition_key=pk if pk is not None else doc_id)
            except cosmos_errors.CosmosResourceNotFoundError:
                return Datum(type=None, value=None)
            return Datum(type="json", value=json.dumps(doc))
        sql = binding.get("sqlQuery")
        if sql is not None:
            query, params = expressions.sql_parameters(str(sql), data)
        else:
            query, params = "SELECT * FROM c", []
        kwargs: dict[str, Any] = {"parameters": params}
        if pk is not None:
            kwargs["partition_key"] = pk
        docs = [doc async for doc in container.query_items(query, **kwargs)]
        return Datum(type="json", value=json.dumps(docs))


class CosmosOutput:
    def __init__(self, clients: CosmosClients) -> None:
        self.clients = clients
        self._created: set[tuple[str, str, str]] = set()

    async def write(self, fd: FunctionDef, binding: BindingSpec, datum: Datum,
                    data: Mapping[str, Any]) -> None:
        payload = conversion.datum_json(datum)
        docs = payload if isinstance(payload, list) else [payload]
        for doc in docs:
            if not isinstance(doc, dict):
                raise TypeError(f"a Cosmos DB output takes JSON objects, got {type(doc).__name__}")
        setting = binding.get("connection") or "CosmosDBConnection"
        db = expressions.resolve(str(binding.get("databaseName")), data)
        coll = expressions.resolve(str(binding.get("containerName")), data)
        if binding.get("createIfNotExists") and (setting, db, coll) not in self._created:
            client = self.clients.client(setting)
            database = await client.create_database_if_not_exists(db)
            pk_path = binding.get("partitionKey") or "/id"
            await database.create_container_if_not_exists(coll, partition_key=PartitionKey(path=pk_path))
            self._created.add((setting, db, coll))
        container = self.clients.container(binding, data, db, coll)
        for doc in docs:
            await container.upsert_item(doc)
