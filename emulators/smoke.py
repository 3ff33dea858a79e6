"""`python -m emulators.smoke URL`: one round trip through a running Cosmic Chat, local or deployed.

get an identity → negotiate as it → connect with pysignalr → join a fresh room → post a message →
wait until it comes back through the change feed and SignalR → fetch the room's history → print the
round-trip time. Exits 0 on success, 1 with a one-line reason on any failure. The deploy workflow runs
it after `pulumi up`; `make test` runs it against the local stack.

Its client calls (`new_identity`, `negotiate`, `group_action`, `post_message`) are the one Python home of
the app's client contract (docs/api.md): the tests and benchmarks use them too, so that a change of the
contract is made here once.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import aiohttp
from pysignalr.client import SignalRClient


class SmokeFailure(RuntimeError):
    """A step failed; the message says which and why."""


@dataclass(frozen=True)
class Identity:
    """A server-issued identity (`POST /api/identities`): every call but History is made as one."""

    id: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


class Listener:
    """A pysignalr client that collects `newMessage` arguments (and exposes its connection id, which
    pysignalr keeps to itself: JoinRoom no longer takes one, but a test may name it, e.g. as an attacker)."""

    def __init__(self, url: str, access_token: str, target: str = "newMessage") -> None:
        self.url = url
        self.token = access_token
        self.messages: list[Any] = []
        self._changed = asyncio.Event()
        self._opened = asyncio.Event()
        self._client = SignalRClient(
            url, headers={"Authorization": f"Bearer {access_token}"}, retry_count=3, retry_sleep=0.2
        )
        self._client.on(target, self._on_message)
        self._client.on_open(self._on_open)
        self._task: asyncio.Task[None] | None = None

    async def _on_message(self, args: list[Any]) -> None:
        self.messages.extend(args)
        self._changed.set()

    async def _on_open(self) -> None:
        self._opened.set()

    @property
    def connection_id(self) -> str:
        query = parse_qs(urlsplit(self._client._transport._url).query)
        ids = query.get("id")
        if not ids:
            raise SmokeFailure("connected, but the SignalR service gave no connection id")
        return ids[0]

    async def start(self, timeout: float = 10.0) -> None:  # noqa: ASYNC109
        self._task = asyncio.create_task(self._client.run())
        opened = asyncio.create_task(self._opened.wait())
        done, _ = await asyncio.wait(
            {opened, self._task}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
        )
        if opened not in done:
            opened.cancel()
            if self._task in done and self._task.exception() is not None:
                raise SmokeFailure(f"SignalR connection failed: {self._task.exception()!r}")
            raise SmokeFailure(f"SignalR connection to {self.url} did not open within {timeout:.0f} s")

    async def wait_for(self, predicate: Callable[[list[Any]], bool], timeout: float) -> bool:  # noqa: ASYNC109
        deadline = time.monotonic() + timeout
        while not predicate(self.messages):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), remaining)
        return True

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None


async def _call(http: aiohttp.ClientSession, method: str, url: str, expect: int, step: str, **kw: Any) -> Any:
    try:
        async with http.request(method, url, **kw) as r:
            text = await r.text()
            if r.status != expect:
                raise SmokeFailure(
                    f"{step}: {method} {url} answered {r.status} (expected {expect}): {text[:200]}"
                )
            return json.loads(text) if text else None
    except aiohttp.ClientError as e:
        raise SmokeFailure(f"{step}: {method} {url} failed: {type(e).__name__}: {e}") from None
    except TimeoutError:
        raise SmokeFailure(f"{step}: {method} {url} did not answer within the step's time limit") from None
    except json.JSONDecodeError:
        raise SmokeFailure(f"{step}: {method} {url} did not answer JSON") from None


async def new_identity(http: aiohttp.ClientSession, base: str, step: str = "identity") -> Identity:
    """`POST /api/identities` → 201 `{id, token}`."""
    got = await _call(http, "POST", f"{base}/api/identities", 201, step)
    if not isinstance(got, dict) or not all(isinstance(got.get(k), str) for k in ("id", "token")):
        raise SmokeFailure(f"{step}: the answer lacks id/token")
    return Identity(got["id"], got["token"])


async def negotiate(
    http: aiohttp.ClientSession, base: str, who: Identity, step: str = "negotiate"
) -> dict[str, str]:
    """`POST /api/negotiate/{userId}` as `who` (its own id: anyone else's is a 403) → `{url, accessToken}`."""
    info = await _call(
        http, "POST", f"{base}/api/negotiate/{quote(who.id, safe='')}", 200, step, headers=who.headers
    )
    if not isinstance(info, dict) or not info.get("url") or not info.get("accessToken"):
        raise SmokeFailure(f"{step}: the answer lacks url/accessToken")
    return info


async def group_action(
    http: aiohttp.ClientSession,
    base: str,
    room: str,
    who: Identity,
    action: str = "join",
    step: str | None = None,
) -> None:
    """`POST /api/rooms/{room}/join|leave` with `{}`: moves `who`'s own SignalR connections (202)."""
    await _call(
        http,
        "POST",
        f"{base}/api/rooms/{room}/{action}",
        202,
        step or f"{action} room",
        json={},
        headers=who.headers,
    )


async def post_message(
    http: aiohttp.ClientSession,
    base: str,
    room: str,
    who: Identity,
    body: dict[str, Any],
    step: str = "post message",
    expect: int = 201,
) -> dict[str, Any]:
    """`POST /api/rooms/{room}/messages` as `who` (JSON): the stored message (201; 200 for a retry)."""
    stored = await _call(
        http, "POST", f"{base}/api/rooms/{room}/messages", expect, step, json=body, headers=who.headers
    )
    if not isinstance(stored, dict):
        raise SmokeFailure(f"{step}: the answer is not a message")
    return stored


async def run(base: str, timeout: float = 15.0) -> dict[str, Any]:  # noqa: ASYNC109
    """The round trip; returns figures for the report, raises SmokeFailure."""
    base = base.rstrip("/")
    parts = urlsplit(base)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SmokeFailure(f"{base!r} is not an http(s) URL such as http://127.0.0.1:7071")
    room = f"smoke-{uuid.uuid4().hex[:12]}"
    message_id = str(uuid.uuid4())
    http_timeout = aiohttp.ClientTimeout(total=timeout)
    async with aiohttp.ClientSession(timeout=http_timeout) as http:
        who = await new_identity(http, base)
        info = await negotiate(http, base, who)
        listener = Listener(info["url"], info["accessToken"])
        try:
            await listener.start(timeout)
            await group_action(http, base, room, who, "join")
            sent = time.perf_counter()
            body = {"id": message_id, "user": "smoke", "text": f"smoke test {room}"}
            stored = await post_message(http, base, room, who, body)
            if stored.get("id") != message_id or stored.get("authorId") != who.id:
                raise SmokeFailure(f"post message: the answer does not echo id {message_id} and its author")
            arrived = await listener.wait_for(
                lambda ms: any(isinstance(m, dict) and m.get("id") == message_id for m in ms), timeout
            )
            if not arrived:
                raise SmokeFailure(
                    f"the message did not come back through the change feed and SignalR "
                    f"within {timeout:.0f} s"
                )
            round_trip = time.perf_counter() - sent
            history = await _call(http, "GET", f"{base}/api/rooms/{room}/messages", 200, "history")
            ids = [m.get("id") for m in (history or {}).get("messages", [])]
            if message_id not in ids:
                raise SmokeFailure("history: the posted message is missing from the room's history")
        finally:
            await listener.stop()
    return {"room": room, "round_trip_ms": round(round_trip * 1000, 1)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m emulators.smoke", description=__doc__.splitlines()[0])
    p.add_argument("url", help="base URL of the chat, e.g. http://127.0.0.1:7071")
    p.add_argument("--timeout", type=float, default=15.0, help="seconds allowed per step (default 15)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.CRITICAL)  # pysignalr logs reconnects; the verdict is ours
    try:
        figures = asyncio.run(run(args.url, args.timeout))
    except SmokeFailure as e:
        print(f"smoke FAILED: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("smoke FAILED: interrupted", file=sys.stderr)
        return 1
    except Exception as e:  # still one line and a non-zero exit, whatever broke
        print(f"smoke FAILED: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    print(
        f"smoke OK: room {figures['room']}, round trip {figures['round_trip_ms']} ms "
        f"(post → change feed → SignalR → client)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
