"""SignalR Service bindings: `signalRConnectionInfo` input and `signalR` output (serverless mode).

Tokens and REST calls go to whatever `AzureSignalRConnectionString` (or the binding's
`connectionStringSetting`) points at, through `emulators.signalr.service_client`, which builds
them exactly as the Functions extension / Management SDK do.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Mapping
from typing import Any

from . import conversion, expressions
from .conversion import Datum
from .loader import BindingSpec, FunctionDef
from .settings import HostSettings

log = logging.getLogger("emulators.functions")

DEFAULT_SETTING = "AzureSignalRConnectionString"


class SignalRBindingError(RuntimeError):
    """A message or group action the extension would reject; names the rule."""


class SignalRClients:
    """One service client per connection setting."""

    def __init__(self, settings: HostSettings) -> None:
        self.settings = settings
        self._clients: dict[str, Any] = {}

    def client(self, setting: str) -> Any:
        if setting not in self._clients:
            from emulators.signalr.service_client import ServiceClient

            value = self.settings.get(setting)
            if not value:
                raise SignalRBindingError(f"connection setting {setting!r} is not set")
            self._clients[setting] = ServiceClient(value)
        return self._clients[setting]

    async def close(self) -> None:
        for c in self._clients.values():
            close = getattr(c, "close", None)
            if close is not None:
                await close()
        self._clients.clear()


def _setting(binding: BindingSpec) -> str:
    return str(binding.get("connectionStringSetting") or binding.get("connection") or DEFAULT_SETTING)


def _hub(binding: BindingSpec, data: Mapping[str, Any]) -> str:
    hub = binding.get("hubName")
    if not hub:
        raise SignalRBindingError(f"binding {binding.name!r}: hubName is required")
    return expressions.resolve(str(hub), data)


class SignalRConnectionInfoInput:
    def __init__(self, clients: SignalRClients) -> None:
        self.clients = clients

    async def read(self, fd: FunctionDef, binding: BindingSpec, data: Mapping[str, Any]) -> Datum:
        user_template = binding.get("userId")
        user_id = expressions.resolve(str(user_template), data) if user_template else None
        info = self.clients.client(_setting(binding)).client_connection_info(
            _hub(binding, data), user_id=user_id or None)
        return Datum(type="json", value=json.dumps({"url": info["url"], "accessToken": info["accessToken"]}))


def _lower_keys(item: Mapping[str, Any]) -> dict[str, Any]:
    return {str(k).lower(): v for k, v in item.items()}


MAX_PARALLEL = 16  # destinations sent to at once by one output (each destination's messages stay in order)


def _check(item: dict[str, Any]) -> None:
    """Everything the extension would refuse, checked for the whole output before anything is sent,
    so a malformed item fails the invocation without a partial delivery."""
    if "action" in item:
        action = str(item.get("action")).lower()
        if action not in ("add", "remove", "removeall"):
            raise SignalRBindingError(f"unknown group action {item.get('action')!r} (add, remove, removeAll)")
        if action != "removeall" and not item.get("groupname"):
            raise SignalRBindingError(f"group action {action!r} needs groupName")
        if not (item.get("connectionid") or item.get("userid")):
            raise SignalRBindingError(f"group action {item.get('action')!r} needs connectionId or userId")
    elif "target" in item:
        target = item.get("target")
        if not isinstance(target, str) or not target:
            raise SignalRBindingError("message 'target' must be a non-empty string")
        if not isinstance(item.get("arguments") or [], list):
            raise SignalRBindingError("message 'arguments' must be an array")
    else:
        raise SignalRBindingError("a signalR output item needs 'target' (message) or 'action' (group action)")


def _destination(item: dict[str, Any]) -> tuple[str, ...]:
    """Who a message goes to, in the extension's precedence: connectionId > userId > groupName > all."""
    if item.get("connectionid"):
        return ("connection", str(item["connectionid"]))
    if item.get("userid"):
        return ("user", str(item["userid"]))
    if item.get("groupname"):
        return ("group", str(item["groupname"]))
    return ("all",)


class SignalROutput:
    def __init__(self, clients: SignalRClients) -> None:
        self.clients = clients

    async def write(self, fd: FunctionDef, binding: BindingSpec, datum: Datum,
                    data: Mapping[str, Any]) -> None:
        payload = conversion.datum_json(datum)
        raw_items = payload if isinstance(payload, list) else [payload]
        items: list[dict[str, Any]] = []
        for raw in raw_items:
            if not isinstance(raw, Mapping):
                raise SignalRBindingError(
                    f"a signalR output item must be a JSON object, got {type(raw).__name__}")
            item = _lower_keys(raw)
            _check(item)
            items.append(item)
        client = self.clients.client(_setting(binding))
        hub = _hub(binding, data)
        if any("action" in item for item in items):
            # Group actions change who receives the messages after them: keep the list's order.
            for item in items:
                if "action" in item:
                    await self._group_action(client, hub, item)
                else:
                    await self._message(client, hub, item)
            return
        # Messages only (a change-feed batch): one chain per destination, in the list's order within
        # it, the chains concurrently, so a batch for ten rooms costs about one room's round trips.
        chains: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        for item in items:
            chains.setdefault(_destination(item), []).append(item)
        limit = asyncio.Semaphore(MAX_PARALLEL)

        async def send(chain: list[dict[str, Any]]) -> None:
            async with limit:
                for item in chain:
                    await self._message(client, hub, item)

        results = await asyncio.gather(*(send(c) for c in chains.values()), return_exceptions=True)
        failures = [r for r in results if isinstance(r, BaseException)]
        if failures:
            raise failures[0]

    async def _message(self, client: Any, hub: str, item: dict[str, Any]) -> None:
        target, args = item["target"], item.get("arguments") or []
        kind, *who = _destination(item)
        if kind == "connection":
            await client.send_to_connection(hub, who[0], target, args)
        elif kind == "user":
            await client.send_to_user(hub, who[0], target, args)
        elif kind == "group":
            await client.send_to_group(hub, who[0], target, args)
        else:
            await client.broadcast(hub, target, args)

    async def _group_action(self, client: Any, hub: str, item: dict[str, Any]) -> None:
        action = str(item.get("action")).lower()
        group, conn, user = item.get("groupname"), item.get("connectionid"), item.get("userid")
        if action == "removeall":
            if conn:
                await client.remove_connection_from_all_groups(hub, conn)
            else:
                await client.remove_user_from_all_groups(hub, user)
        elif conn:
            if action == "add":
                await client.add_connection_to_group(hub, group, conn)
            else:
                await client.remove_connection_from_group(hub, group, conn)
        elif action == "add":
            await client.add_user_to_group(hub, group, user)
        else:
            await client.remove_user_from_group(hub, group, user)
