"""REST tokens: the service client reuses one per URL for a while, and the emulator's cache of verified
tokens still refuses them once they expire, for another URL, or with another key."""

from __future__ import annotations

import time

import jwt
import pytest

from emulators.signalr import auth
from emulators.signalr.service_client import ServiceClient

KEY = "k" * 44
PATH = "/api/hubs/chat/groups/room-1/:send"
TARGET = auth.RequestTarget("http", "127.0.0.1", 8888, PATH)


def token(lifetime: int = 300, aud: str = f"http://127.0.0.1{PATH}") -> str:
    now = int(time.time())
    return jwt.encode({"aud": aud, "iat": now, "nbf": now, "exp": now + lifetime}, KEY.encode(), "HS256")


def test_a_cached_token_is_refused_once_expired(monkeypatch: pytest.MonkeyPatch) -> None:
    t = token(lifetime=100)
    assert auth.verify_rest_token(t, KEY, TARGET)["aud"].endswith(PATH)
    assert auth.verify_rest_token(t, KEY, TARGET)["aud"].endswith(PATH)  # from the cache
    later = time.time() + 200
    monkeypatch.setattr(auth.time, "time", lambda: later)
    monkeypatch.setattr(jwt.api_jwt, "datetime", _Clock(later))
    with pytest.raises(auth.AuthError, match="expired"):
        auth.verify_rest_token(t, KEY, TARGET)


def test_a_cached_token_is_still_checked_against_the_url_and_the_key() -> None:
    t = token()
    auth.verify_rest_token(t, KEY, TARGET)
    other = auth.RequestTarget("http", "127.0.0.1", 8888, "/api/hubs/chat/groups/room-2/:send")
    with pytest.raises(auth.AuthError, match="audience"):
        auth.verify_rest_token(t, KEY, other)
    with pytest.raises(auth.AuthError, match="signature"):
        auth.verify_rest_token(t, "x" * 44, TARGET)


def test_the_service_client_reuses_a_token_per_url() -> None:
    client = ServiceClient(f"Endpoint=http://127.0.0.1;Port=8888;AccessKey={KEY};Version=1.0;")
    _, aud1 = client.rest_url("chat", "/groups/room-1/:send")
    _, aud2 = client.rest_url("chat", "/groups/room-2/:send")
    first = client._rest_token(aud1)
    assert client._rest_token(aud1) == first
    assert client._rest_token(aud2) != first
    claims = jwt.decode(first, KEY.encode(), algorithms=["HS256"], options={"verify_aud": False})
    assert claims["aud"] == aud1 and claims["exp"] - claims["iat"] == 300


class _Clock:
    """Stands in for `datetime` in PyJWT's claim checks, so its `now` is our `later`."""

    def __init__(self, at: float) -> None:
        import datetime as real

        self._real = real.datetime
        self._at = at

    def now(self, tz=None):
        return self._real.fromtimestamp(self._at, tz)

    def __getattr__(self, name: str):
        return getattr(self._real, name)
