"""Has a SignalR user a live connection? Asked of the service before JoinRoom/LeaveRoom set their output
binding.

Why ask: the `signalR` output binding performs the group action after the handler has returned, so a
handler cannot turn the service's answer into its own. Adding a user with no connection to a group
succeeds silently (the service keeps the membership for the user's later connections), so a client that
joined before its connection was up would believe it is in the room and hear nothing until it
reconnects. One `HEAD /api/hubs/{hub}/users/{user}` (CheckUserExistence: 200 when the user has a
connection, 404 otherwise) first lets JoinRoom and LeaveRoom answer `404 not_connected`, which a client
can act on (connect, then join), in Azure and locally alike.

Credentials come from the same setting the binding uses, `AzureSignalRConnectionString`: an access key
signs a 5-minute token whose audience is the request URL (what the service checks); identity-based
settings (`__serviceUri`, `__credential`, `__clientId`) get an Entra ID token for the SignalR data plane,
so the app stays keyless in Azure."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import aiohttp
import jwt

SETTING = "AzureSignalRConnectionString"
API_VERSION = "2022-06-01"
SIGNALR_SCOPE = "https://signalr.azure.com/.default"
TIMEOUT = aiohttp.ClientTimeout(total=5, connect=3)
TOKEN_LIFETIME = 300


class PresenceUnknown(Exception):
    """The service could not be asked (unreachable, refused the credentials, no setting)."""


@dataclass(frozen=True)
class ServiceAccess:
    endpoint: str
    access_key: str | None = None
    credential: Any = None

    async def bearer(self, url: str) -> str:
        if self.access_key is not None:
            claims = {"aud": url, "exp": int(time.time()) + TOKEN_LIFETIME}
            return jwt.encode(claims, self.access_key.encode("utf-8"), algorithm="HS256")
        token = await self.credential.get_token(SIGNALR_SCOPE)
        return token.token


def parse_connection_string(value: str) -> ServiceAccess:
    """`Endpoint=https://x.service.signalr.net;AccessKey=...;Version=1.0;[Port=...]`."""
    parts: dict[str, str] = {}
    for part in value.split(";"):
        if part.strip():
            key, sep, val = part.partition("=")
            if not sep:
                raise PresenceUnknown(f"{SETTING} has a part that is not Key=Value")
            parts[key.strip().lower()] = val.strip()
    endpoint = parts.get("endpoint", "").rstrip("/")
    if not endpoint.startswith(("http://", "https://")):
        raise PresenceUnknown(f"{SETTING} has no http(s) Endpoint")
    if "port" in parts:
        scheme, _, host = endpoint.partition("://")
        endpoint = f"{scheme}://{host.split(':')[0]}:{int(parts['port'])}"
    if "accesskey" not in parts:
        raise PresenceUnknown(f"{SETTING} has no AccessKey and no identity settings")
    return ServiceAccess(endpoint, access_key=parts["accesskey"])


def _identity_access(environ: dict[str, str] | os._Environ[str]) -> ServiceAccess:
    from azure.identity.aio import DefaultAzureCredential, ManagedIdentityCredential

    endpoint = environ[f"{SETTING}__serviceUri"].rstrip("/")
    if environ.get(f"{SETTING}__credential", "").lower() == "managedidentity":
        credential: Any = ManagedIdentityCredential(client_id=environ.get(f"{SETTING}__clientId") or None)
    else:
        credential = DefaultAzureCredential()
    return ServiceAccess(endpoint, credential=credential)


_access: dict[str, ServiceAccess] = {}


def service_access(environ: dict[str, str] | os._Environ[str] = os.environ) -> ServiceAccess:
    """Read the setting once per distinct value (a credential object caches its tokens)."""
    if environ.get(SETTING):
        key = environ[SETTING]
        if key not in _access:
            _access[key] = parse_connection_string(key)
        return _access[key]
    if environ.get(f"{SETTING}__serviceUri"):
        key = f"identity:{environ[f'{SETTING}__serviceUri']}"
        if key not in _access:
            _access[key] = _identity_access(environ)
        return _access[key]
    raise PresenceUnknown(f"{SETTING} is not set")


async def user_connected(hub: str, user_id: str) -> bool:
    """200 → connected, 404 → no connection; anything else → PresenceUnknown (the caller decides)."""
    access = service_access()
    url = f"{access.endpoint}/api/hubs/{quote(hub, safe='')}/users/{quote(user_id, safe='')}"
    try:
        headers = {"Authorization": f"Bearer {await access.bearer(url)}"}
        # A session per check, not a pooled one: this runs once per join/leave, not per message, and the
        # worker gives the app no shutdown hook to close a pooled session cleanly.
        async with (
            aiohttp.ClientSession() as http,
            http.head(
                url,
                params={"api-version": API_VERSION},
                headers=headers,
                timeout=TIMEOUT,
                allow_redirects=False,
            ) as response,
        ):
            if response.status == 200:
                return True
            if response.status == 404:
                return False
            raise PresenceUnknown(f"the SignalR service answered {response.status}")
    except (aiohttp.ClientError, TimeoutError) as error:
        raise PresenceUnknown(f"the SignalR service could not be reached: {type(error).__name__}") from None
