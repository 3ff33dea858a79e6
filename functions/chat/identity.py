"""Who is calling: an identity the server issued and can verify, never a name from a body or a header a
client may set.

An identity is a random id (16 bytes, base64url: 22 characters) and a token, `v1.<id>.<signature>`, the
signature being HMAC-SHA256 of `v1.<id>` under the app's signing key. The browser keeps both in local
storage and sends `Authorization: Bearer <token>`; editing the id invalidates the signature. Verifying is
one HMAC, no I/O: it is on every write.

The signing key is not an app setting (a secret in ARM, readable by anyone who can read the site's config,
and one more thing to rotate): the first instance that needs it creates it in Cosmos DB, in the `control`
container, create-if-absent, and every Flex instance reads that one document once. So identities hold
across instances and restarts, locally as in Azure, and deleting the document rotates the key (every
browser then gets a new identity). docs/api.md "Identity"."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass

from azure.core.exceptions import AzureError
from azure.cosmos import exceptions

from . import cosmos
from .errors import ApiError

VERSION = "v1"
KEY_DOCUMENT = "identity-signing-key"
ID_RE = re.compile(r"[A-Za-z0-9_-]{22}")
TOKEN_RE = re.compile(r"v1\.([A-Za-z0-9_-]{22})\.([A-Za-z0-9_-]{43})")
FIELD = "Authorization"


@dataclass(frozen=True)
class Identity:
    id: str


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _signature(key: bytes, identity_id: str) -> str:
    return _b64(hmac.new(key, f"{VERSION}.{identity_id}".encode("ascii"), hashlib.sha256).digest())


def token_for(key: bytes, identity_id: str) -> str:
    return f"{VERSION}.{identity_id}.{_signature(key, identity_id)}"


def new_identity(key: bytes) -> tuple[Identity, str]:
    identity = Identity(_b64(secrets.token_bytes(16)))
    return identity, token_for(key, identity.id)


def _refuse(code: str, message: str) -> ApiError:
    return ApiError(401, code, message, FIELD, {"WWW-Authenticate": 'Bearer realm="cosmic-chat"'})


def verify(key: bytes, authorization: str | None) -> Identity:
    """The identity in `Authorization: Bearer <token>`, or a 401 naming the header."""
    if not authorization:
        raise _refuse("identity_required", "send Authorization: Bearer <token> from POST /api/identities")
    scheme, _, token = authorization.strip().partition(" ")
    match = TOKEN_RE.fullmatch(token.strip()) if scheme.lower() == "bearer" else None
    if match is None or not hmac.compare_digest(match.group(2), _signature(key, match.group(1))):
        raise _refuse("invalid_identity", "the identity token is not one this server issued: get a new one")
    return Identity(match.group(1))


# Per Cosmos DB account (the setting's value): one key per store, read once per process. No lock: two
# first requests racing both ask, and create-if-absent makes them agree on one key.
_keys: dict[str, bytes] = {}


async def signing_key(environ: Mapping[str, str] = os.environ) -> bytes:
    """The key, read (or, the very first time, created) once per process; 503 if the store cannot say."""
    account = cosmos.account(environ)
    key = _keys.get(account)
    if key is None:
        try:
            key = _keys[account] = await _load_or_create_key()
        except (AzureError, cosmos.StoreUnavailable) as error:
            raise cosmos.unavailable("the identity key could not be read", error) from None
    return key


async def _load_or_create_key() -> bytes:
    control = cosmos.container(cosmos.CONTROL)
    candidate = {"id": KEY_DOCUMENT, "key": _b64(secrets.token_bytes(32))}
    try:
        stored = await control.create_item(candidate)
    except exceptions.CosmosResourceExistsError:
        stored = await control.read_item(KEY_DOCUMENT, partition_key=KEY_DOCUMENT)
    return base64.urlsafe_b64decode(stored["key"] + "==")


async def caller(authorization: str | None) -> Identity:
    """The verified identity in an `Authorization` header: 401 if it is not one, 503 if the key is
    unreadable."""
    return verify(await signing_key(), authorization)
