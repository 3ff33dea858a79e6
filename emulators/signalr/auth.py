"""Access-token checks, done the way Azure SignalR Service does them.

Both client tokens (from a negotiate function) and REST tokens (from the server SDK) are HS256/HS512
JWTs keyed with the UTF-8 bytes of the AccessKey string (not its base64 decoding). The audience is a
URL; the Azure SDKs build it from the endpoint *without* the port (``ServiceEndpoint.cs``), so an
``aud`` without a port matches a request on any port of the same host.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import jwt

ALGORITHMS = ["HS256", "HS512"]
USER_ID_CLAIMS = ("asrs.s.uid", "nameid", "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/nameidentifier",
                  "sub")
_LOOPBACK = {"localhost", "127.0.0.1", "::1", "[::1]"}
# The service refuses longer client tokens with 413 (they travel in queries; HTTP/2 headers cap at 4K).
MAX_TOKEN_LENGTH = 4096
# Claims the Azure SDKs add when the app asks for CloseOnAuthenticationExpiration (Constants.ClaimType).
CLOSE_ON_AUTH_EXPIRATION = "asrs.s.coae"
AUTH_EXPIRES_ON = "asrs.s.aeo"


class AuthError(Exception):
    """The request is not authenticated; the text says why (it goes in the 401 body, never the token)."""


@dataclass(frozen=True)
class RequestTarget:
    """Where the request arrived, as the audience check needs it."""

    scheme: str
    host: str
    port: int | None
    path: str


def bearer_token(headers: Any, query: Any, allow_query: bool) -> str | None:
    """The token from ``Authorization: Bearer``, else (WebSockets and SSE only) from ``access_token=``."""
    header = headers.get("Authorization", "")
    if header[:7].lower() == "bearer ":
        return header[7:].strip() or None
    if allow_query:
        return query.get("access_token") or None
    return None


def _same_host(a: str, b: str) -> bool:
    a, b = a.lower(), b.lower()
    return a == b or (a in _LOOPBACK and b in _LOOPBACK)


def _audience_matches_endpoint(aud: str, target: RequestTarget) -> tuple[bool, Any]:
    try:
        parts = urlsplit(aud)
        port = parts.port
    except ValueError:
        return False, None
    if parts.scheme.lower() != target.scheme.lower() or not _same_host(parts.hostname or "", target.host):
        return False, parts
    if port is not None and target.port is not None and port != target.port:
        return False, parts
    return True, parts


def verify(token: str | None, key: str, leeway: float = 0.0) -> dict[str, Any]:
    """Check signature, ``exp`` and ``nbf``; return the claims."""
    if not token:
        raise AuthError("Missing access token: send 'Authorization: Bearer <JWT>'.")
    try:
        with warnings.catch_warnings():
            # The service's keys (and the well-known emulator key) are 44 characters: short for HS512 by
            # RFC 7518's advice, but that is the service's choice, not a fault of this request.
            warnings.simplefilter("ignore", jwt.InsecureKeyLengthWarning)
            return jwt.decode(token, key.encode(), algorithms=ALGORITHMS, leeway=leeway,
                              options={"verify_aud": False, "require": ["exp"]})
    except jwt.ExpiredSignatureError:
        raise AuthError("The access token has expired.") from None
    except jwt.ImmatureSignatureError:
        raise AuthError("The access token is not valid yet (nbf).") from None
    except jwt.MissingRequiredClaimError as exc:
        raise AuthError(f"The access token lacks the required claim '{exc.claim}'.") from None
    except jwt.InvalidSignatureError:
        raise AuthError("The access token signature is invalid (wrong AccessKey?).") from None
    except jwt.PyJWTError as exc:
        raise AuthError(f"The access token is invalid: {exc}.") from None


def _audiences(claims: dict[str, Any]) -> list[str]:
    aud = claims.get("aud")
    if isinstance(aud, str):
        return [aud]
    if isinstance(aud, list):
        return [a for a in aud if isinstance(a, str)]
    return []


def verify_client_token(token: str | None, key: str, target: RequestTarget, hub: str,
                        leeway: float = 0.0) -> dict[str, Any]:
    """A client token: ``aud`` must name this service's ``/client/`` endpoint and (if it says) this hub."""
    claims = verify(token, key, leeway)
    for aud in _audiences(claims):
        ok, parts = _audience_matches_endpoint(aud, target)
        if not ok or not parts.path.rstrip("/").lower().endswith("/client"):
            continue
        hubs = parse_qs(parts.query).get("hub")
        if hubs and hubs[0].lower() != hub.lower():
            continue
        return claims
    raise AuthError(f"The access token audience does not match this endpoint's client URL for hub '{hub}'.")


# Tokens that passed `verify_rest_token`, by (token, key, target, leeway): a server SDK reuses one
# token per URL for minutes, and checking its HMAC, base64 and JSON again on every message costs more
# than the rest of the REST request's own work. Only time-dependent claims are checked again on a hit
# (a miss, e.g. an expired token, goes through the full check and its exact error).
_VERIFIED: dict[tuple[str, str, RequestTarget, float], dict[str, Any]] = {}
_VERIFIED_MAX = 1024


def _still_valid(claims: dict[str, Any], leeway: float) -> bool:
    now = time.time()
    exp, nbf, iat = claims.get("exp"), claims.get("nbf"), claims.get("iat")
    try:
        return (float(exp) > now - leeway and (nbf is None or float(nbf) <= now + leeway)
                and (iat is None or float(iat) <= now + leeway))
    except (TypeError, ValueError):
        return False


def verify_rest_token(token: str | None, key: str, target: RequestTarget,
                      leeway: float = 0.0) -> dict[str, Any]:
    """A REST token: ``aud`` must be the request URL (the query is ignored, the port may be left out)."""
    cache_key = (token or "", key, target, leeway)
    claims = _VERIFIED.get(cache_key)
    if claims is not None and _still_valid(claims, leeway):
        return claims
    claims = verify(token, key, leeway)
    for aud in _audiences(claims):
        ok, parts = _audience_matches_endpoint(aud, target)
        if ok and unquote(parts.path).rstrip("/").lower() == unquote(target.path).rstrip("/").lower():
            if len(_VERIFIED) >= _VERIFIED_MAX:
                _VERIFIED.clear()
            _VERIFIED[cache_key] = claims
            return claims
    raise AuthError("The access token audience does not match the request URL.")


def auth_expires_on(claims: dict[str, Any]) -> float | None:
    """When the service must close this client's connection (Unix seconds), or None to keep it.

    The service does not close a connected client when its token's ``exp`` passes (WebSockets stay
    open, Azure/azure-signalr#943); only a token minted with CloseOnAuthenticationExpiration
    (``asrs.s.coae: "true"`` plus ``asrs.s.aeo``, Azure/azure-signalr#1699) asks for that.
    """
    if str(claims.get(CLOSE_ON_AUTH_EXPIRATION, "")).lower() != "true":
        return None
    for name in (AUTH_EXPIRES_ON, "exp"):
        try:
            return float(claims[name])
        except (KeyError, TypeError, ValueError):
            continue
    return None


def user_id(claims: dict[str, Any]) -> str | None:
    for name in USER_ID_CLAIMS:
        value = claims.get(name)
        if isinstance(value, str) and value:
            return value
    return None
