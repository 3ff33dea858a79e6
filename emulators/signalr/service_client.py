"""Server-side helper that plays the Functions SignalR bindings against the service (or this emulator).

It does what the Azure Functions SignalR extension does, with only aiohttp and PyJWT:
``client_connection_info`` for the ``signalRConnectionInfo`` input binding, and REST calls for the
``signalR`` output binding's messages and group actions. Unlike the 2018 sample (defect D5), every
REST call raises :class:`SignalRServiceError` on a non-2xx answer instead of dropping it silently.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

import aiohttp
import jwt
from yarl import URL

API_VERSION = "2022-06-01"
DEFAULT_LIFETIME = 3600
REST_TOKEN_LIFETIME = 300  # seconds a REST token is valid
REST_TOKEN_REUSE = 60  # seconds one is reused: it still has at least 240 s to live when sent


class SignalRServiceError(Exception):
    """A REST call was refused; carries what a person needs to see why."""

    def __init__(self, method: str, url: str, status: int, body: str) -> None:
        super().__init__(f"SignalR Service {method} {url} -> {status}: {body[:500]}")
        self.method, self.url, self.status, self.body = method, url, status, body


@dataclass(frozen=True)
class ServiceEndpoint:
    """What a connection string says: where the service is and the key that signs tokens for it."""

    endpoint: str  # scheme://host[:port], no trailing slash, Port= applied
    access_key: str
    audience_base: str  # scheme://host, no port: the Azure SDKs sign audiences without it
    client_endpoint: str
    version: str = "1.0"


def parse_connection_string(connection_string: str) -> ServiceEndpoint:
    """Parse ``Endpoint=..;AccessKey=..;[Port=..;][ClientEndpoint=..;]Version=1.0;`` (any key case)."""
    fields: dict[str, str] = {}
    for part in connection_string.split(";"):
        if not part.strip():
            continue
        name, sep, value = part.partition("=")
        if not sep:
            raise ValueError(f"Connection string part {name.strip()!r} is not 'Key=Value'.")
        fields[name.strip().lower()] = value.strip()
    endpoint = fields.get("endpoint", "").rstrip("/")
    if not endpoint:
        raise ValueError("Connection string lacks 'Endpoint='.")
    key = fields.get("accesskey")
    if not key:
        raise ValueError("Connection string lacks 'AccessKey=' (identity-based auth is not supported here).")
    version = fields.get("version", "1.0")
    if not version.startswith("1."):
        raise ValueError(f"Connection string Version={version} is not supported (1.x only).")
    endpoint = _with_port(endpoint, fields.get("port"))
    parts = urlsplit(endpoint)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"Connection string Endpoint={endpoint!r} is not an http(s) URL.")
    client_endpoint = _with_port(fields["clientendpoint"].rstrip("/"), fields.get("port")) \
        if fields.get("clientendpoint") else endpoint
    return ServiceEndpoint(endpoint, key, f"{parts.scheme}://{parts.hostname}", client_endpoint, version)


def _with_port(url: str, port: str | None) -> str:
    if not port:
        return url
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"Connection string Port={port!r} is not a port number.")
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname}:{port}{parts.path}".rstrip("/")


def _token(audience: str, key: str, lifetime: int, claims: dict[str, Any] | None = None) -> str:
    now = int(time.time())
    payload: dict[str, Any] = {"aud": audience, "iat": now, "nbf": now, "exp": now + lifetime}
    if claims:
        payload.update(claims)
    return jwt.encode(payload, key.encode(), algorithm="HS256")


class ServiceClient:
    """One per connection string; reuse it (it holds an HTTP session). ``async with`` closes it."""

    def __init__(self, connection_string: str, session: aiohttp.ClientSession | None = None) -> None:
        self.endpoint = parse_connection_string(connection_string)
        self._session = session
        self._owns_session = session is None
        self._tokens: dict[str, tuple[str, float]] = {}  # audience → (REST token, when signed)

    async def __aenter__(self) -> ServiceClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None and self._owns_session:
            await self._session.close()
        self._session = None

    # -- signalRConnectionInfo ------------------------------------------------------------------

    def client_connection_info(self, hub: str, user_id: str | None = None,
                               lifetime: int = DEFAULT_LIFETIME,
                               auth_expires_on: float | None = None) -> dict[str, str]:
        """``{"url", "accessToken"}`` as the Functions extension makes them (hub lower-cased, no port).

        ``auth_expires_on`` (Unix seconds) is the Management SDK's CloseOnAuthenticationExpiration: the
        service closes the connection then (``allowReconnect``), instead of letting it outlive the
        app's sign-in; without it a connected client stays connected past the token's ``exp``.
        """
        hub = hub.lower()
        path = f"/client/?hub={quote(hub, safe='')}"
        claims: dict[str, Any] = {"asrs.s.uid": user_id} if user_id else {}
        if auth_expires_on is not None:
            claims.update({"asrs.s.coae": "true", "asrs.s.aeo": str(int(auth_expires_on))})
        token = _token(self.endpoint.audience_base + path, self.endpoint.access_key, lifetime, claims)
        return {"url": self.endpoint.client_endpoint + path, "accessToken": token}

    # -- signalR output binding: messages ---------------------------------------------------------

    async def send(self, hub: str, message: dict[str, Any]) -> None:
        """An output-binding message; precedence connectionId > userId > groupName > broadcast."""
        target = message.get("target")
        if not isinstance(target, str) or not target:
            raise ValueError("SignalR message needs 'target': the client method name.")
        arguments = message.get("arguments") or []
        if message.get("connectionId"):
            await self.send_to_connection(hub, message["connectionId"], target, arguments)
        elif message.get("userId"):
            await self.send_to_user(hub, message["userId"], target, arguments)
        elif message.get("groupName"):
            await self.send_to_group(hub, message["groupName"], target, arguments)
        else:
            await self.broadcast(hub, target, arguments)

    async def broadcast(self, hub: str, target: str, arguments: list[Any],
                        excluded: list[str] | None = None) -> None:
        await self._call("POST", hub, "/:send", {"target": target, "arguments": arguments},
                         [("excluded", e) for e in excluded or ()])

    async def send_to_user(self, hub: str, user_id: str, target: str, arguments: list[Any]) -> None:
        await self._call("POST", hub, f"/users/{_seg(user_id)}/:send",
                         {"target": target, "arguments": arguments})

    async def send_to_group(self, hub: str, group: str, target: str, arguments: list[Any],
                            excluded: list[str] | None = None) -> None:
        await self._call("POST", hub, f"/groups/{_seg(group)}/:send",
                         {"target": target, "arguments": arguments},
                         [("excluded", e) for e in excluded or ()])

    async def send_to_connection(self, hub: str, connection_id: str, target: str,
                                 arguments: list[Any]) -> None:
        await self._call("POST", hub, f"/connections/{_seg(connection_id)}/:send",
                         {"target": target, "arguments": arguments})

    # -- signalR output binding: group actions -----------------------------------------------------

    async def group_action(self, hub: str, action: dict[str, Any]) -> None:
        """``{"action": "add|remove|removeAll", "groupName", "connectionId"?, "userId"?}`` (binding shape)."""
        kind = str(action.get("action", "")).lower()
        group = action.get("groupName")
        conn_id, user_id = action.get("connectionId"), action.get("userId")
        if kind not in ("add", "remove", "removeall"):
            raise ValueError("Group action 'action' must be 'add', 'remove' or 'removeAll'.")
        if not conn_id and not user_id:
            raise ValueError("Group action needs 'connectionId' or 'userId'.")
        if kind != "removeall" and not group:
            raise ValueError(f"Group action '{action['action']}' needs 'groupName'.")
        if kind == "add":
            if conn_id:
                await self.add_connection_to_group(hub, group, conn_id)
            else:
                await self.add_user_to_group(hub, group, user_id)
        elif kind == "remove":
            if conn_id:
                await self.remove_connection_from_group(hub, group, conn_id)
            else:
                await self.remove_user_from_group(hub, group, user_id)
        elif conn_id:
            await self.remove_connection_from_all_groups(hub, conn_id)
        else:
            await self.remove_user_from_all_groups(hub, user_id)

    async def add_connection_to_group(self, hub: str, group: str, connection_id: str) -> None:
        """A connection that is gone (`404` + `x-ms-error-code: Error.Connection.NotExisted`) is not an
        error: the Management SDK, and so the Functions extension, takes it as expected and goes on."""
        await self._call("PUT", hub, f"/groups/{_seg(group)}/connections/{_seg(connection_id)}",
                         expected_404=CONNECTION_GONE_ERROR)

    async def remove_connection_from_group(self, hub: str, group: str, connection_id: str) -> None:
        await self._call("DELETE", hub, f"/groups/{_seg(group)}/connections/{_seg(connection_id)}")

    async def remove_connection_from_all_groups(self, hub: str, connection_id: str) -> None:
        await self._call("DELETE", hub, f"/connections/{_seg(connection_id)}/groups")

    async def add_user_to_group(self, hub: str, group: str, user_id: str, ttl: int | None = None) -> None:
        query = [("ttl", str(ttl))] if ttl is not None else []
        await self._call("PUT", hub, f"/users/{_seg(user_id)}/groups/{_seg(group)}", query=query)

    async def remove_user_from_group(self, hub: str, group: str, user_id: str) -> None:
        await self._call("DELETE", hub, f"/users/{_seg(user_id)}/groups/{_seg(group)}")

    async def remove_user_from_all_groups(self, hub: str, user_id: str) -> None:
        await self._call("DELETE", hub, f"/users/{_seg(user_id)}/groups")

    async def close_connection(self, hub: str, connection_id: str, reason: str | None = None) -> None:
        await self._call("DELETE", hub, f"/connections/{_seg(connection_id)}",
                         query=[("reason", reason)] if reason else [])

    # -- existence checks (404 is an answer here, not an error) ------------------------------------

    async def connection_exists(self, hub: str, connection_id: str) -> bool:
        return await self._exists(hub, f"/connections/{_seg(connection_id)}")

    async def user_exists(self, hub: str, user_id: str) -> bool:
        return await self._exists(hub, f"/users/{_seg(user_id)}")

    async def group_exists(self, hub: str, group: str) -> bool:
        return await self._exists(hub, f"/groups/{_seg(group)}")

    async def _exists(self, hub: str, path: str) -> bool:
        status = await self._call("HEAD", hub, path, allow=(404,))
        return status == 200

    # -- plumbing ------------------------------------------------------------------------------------

    def _rest_token(self, audience: str) -> str:
        """A REST token for this URL, reused for `REST_TOKEN_REUSE` seconds of its `REST_TOKEN_LIFETIME`
        (as the Management SDK caches its tokens): signing one per message was measurable, and the
        same token lets the service skip verifying it again."""
        now = time.monotonic()
        cached = self._tokens.get(audience)
        if cached is not None and now - cached[1] < REST_TOKEN_REUSE:
            return cached[0]
        if len(self._tokens) >= 1024:
            self._tokens.clear()
        token = _token(audience, self.endpoint.access_key, REST_TOKEN_LIFETIME)
        self._tokens[audience] = (token, now)
        return token

    def rest_url(self, hub: str, path: str) -> tuple[str, str]:
        """The request URL and the audience the SDK signs for it (same path and query, no port)."""
        suffix = f"/api/hubs/{_seg(hub.lower())}{path}?api-version={API_VERSION}"
        return self.endpoint.endpoint + suffix, self.endpoint.audience_base + suffix

    async def _call(self, method: str, hub: str, path: str, body: dict[str, Any] | None = None,
                    query: list[tuple[str, str]] | None = None, allow: tuple[int, ...] = (),
                    expected_404: str | None = None) -> int:
        url, audience = self.rest_url(hub, path)
        if query:
            url += "".join(f"&{quote(k)}={quote(v, safe='')}" for k, v in query)
        token = self._rest_token(audience)
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
        headers = {"Authorization": f"Bearer {token}"}
        request = self._session.request(method, URL(url, encoded=True), json=body, headers=headers)
        async with request as response:
            if 200 <= response.status < 300 or response.status in allow:
                return response.status
            if (response.status == 404 and expected_404
                    and response.headers.get("x-ms-error-code", "").lower() == expected_404.lower()):
                return response.status
            text = await response.text()
            raise SignalRServiceError(method, url.split("?")[0], response.status, text)


CONNECTION_GONE_ERROR = "Error.Connection.NotExisted"


def _seg(value: str) -> str:
    return quote(value, safe="")
