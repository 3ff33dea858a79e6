"""SignalR Service bindings: `signalRConnectionInfo` input and `signalR` output (serverless mode).

Tokens and REST calls go to whatever `AzureSignalRConnectionString` (or the binding's
`connectionStringSetting`) points at, through `emulators.signalr.service_client`, which builds
them exactly as the Functions extension / Management SDK do.
"""

from __future__ import annotations

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


class SignalROutput:
    def __init__(self, clients: SignalRClients) -> None:
        self.clients = clients

    async def write(self, fd: FunctionDef, binding: BindingSpec, datum: Datum,
                    data: Mapping[str, Any]) -> None:
        payload = conversion.datum_json(datum)
        items = payload if isinstance(payload, list) else [payload]
        client = self.clients.client(_setting(binding))
        hub = _hub(binding, data)
        for raw in items:
            if not isinstance(raw, Mapping):
                raise SignalRBindingError(
                    f"a signalR output item must be a JSON object, got {type(raw).__name__}")
            item = _lower_keys(raw)
            if "action" in item:
                await self._group_action(client, hub, item)
            elif "target" in item:
                await self._message(client, hub, item)
            else:
                raise SignalRBindingError(
                    "a signalR output item needs 'target' (message) or 'action' (group action)")

    async def _message(self, client: Any, hub: str, item: dict[str, Any]) -> None:
        target = item.get("target")
        if not isinstance(target, str) or not target:
            raise SignalRBindingError("message 'target' must be a non-empty string")
        args = item.get("arguments") or []
        if not isinstance(args, list):
            raise SignalRBindingError("message 'arguments' must be an array")
        # Precedence of the Functions extension: connectionId > userId > groupName > broadcast.
        if item.get("connectionid"):
            await client.send_to_connection(hub, item["connectionid"], target, args)
        elif item.get("userid"):
            await client.send_to_user(hub, item["userid"], target, args)
        elif item.get("groupname"):
            await client.send_to_group(hub, item["groupname"], target, args)
        else:
            await client.broadcast(hub, target, args)

    async def _group_action(self, client: Any, hub: str, item: dict[str, Any]) -> None:
        action = str(item.get("action")).lower()
        group = item.get("groupname")
        conn = item.get("connectionid")
        user = item.get("userid")
        if action == "add" or action == "remove":
            if not group:
                raise SignalRBindingError(f"group action {action!r} needs groupName")
            if conn:
                if action == "add":
                    await client.add_connection_to_group(hub, group, conn)
                else:
                    await client.remove_connection_from_group(hub, group, conn)
            elif user:
                if action == "add":
                    await client.add_user_to_group(hub, group, user)
                else:
                    await client.remove_user_from_group(hub, group, user)
            else:
                raise SignalRBindingError(f"group action {action!r} needs connectionId or userId")
        elif action == "removeall":
            if conn:
                await client.remove_connection_from_all_groups(hub, conn)
            elif user:
                await client.remove_user_from_all_groups(hub, user)
            else:
                raise SignalRBindingError("group action 'removeAll' needs connectionId or userId")
        else:
            raise SignalRBindingError(f"unknown group action {item.get('action')!r} (add, remove, removeAll)")
