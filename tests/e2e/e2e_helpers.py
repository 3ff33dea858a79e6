"""Helpers for the end-to-end tests: the local stack in-process and a client that behaves like the
web client (identity, negotiate, connect, join, post, catch up), over HTTP and pysignalr. The API calls
themselves are `emulators.smoke`'s (one home for the client contract).

Rate limits: the in-process stack keeps the app's defaults (`chat.limits` is read once per process, so a
setting here would not reach it reliably). No test posts faster than a person per identity: `post()`
without `who` posts as a fresh identity, as a new visitor would."""

from __future__ import annotations

import argparse
import asyncio
import uuid
from pathlib import Path
from typing import Any

import aiohttp

from emulators.smoke import Identity, Listener, group_action, negotiate, new_identity, post_message

ROOT = Path(__file__).resolve().parent.parent.parent


def stack_args(**kw: Any) -> argparse.Namespace:
    args = {
        "host": "127.0.0.1",
        "port": 0,
        "cosmos_port": 0,
        "signalr_port": 0,
        "in_memory": True,
        "data_dir": None,
        "app_dir": ROOT / "functions",
        "verbose": False,
    }
    args.update(kw)
    return argparse.Namespace(**args)


def fresh_room(prefix: str = "r") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


class ChatClient:
    """What the web client does, over HTTP + pysignalr: get an identity, negotiate as it, connect, join,
    post, catch up. `who` reuses an identity (a browser keeps its own across reconnects)."""

    def __init__(
        self, http: aiohttp.ClientSession, base: str, room: str, who: Identity | None = None
    ) -> None:
        self.http = http
        self.base = base
        self.room = room
        self.who = who
        self.listener: Listener | None = None

    async def connect(self) -> None:
        if self.who is None:
            self.who = await new_identity(self.http, self.base)
        info = await negotiate(self.http, self.base, self.who)
        self.listener = Listener(info["url"], info["accessToken"])
        await self.listener.start()
        await group_action(self.http, self.base, self.room, self.who, "join")

    async def leave(self) -> None:
        assert self.who is not None
        await group_action(self.http, self.base, self.room, self.who, "leave")

    async def disconnect(self) -> None:
        if self.listener is not None:
            await self.listener.stop()

    @property
    def received(self) -> list[dict[str, Any]]:
        return [] if self.listener is None else self.listener.messages

    async def wait_for_ids(self, ids: set[str], timeout: float = 10.0) -> bool:
        assert self.listener is not None
        return await self.listener.wait_for(lambda ms: ids <= {m["id"] for m in ms}, timeout)


async def post(
    http: aiohttp.ClientSession,
    base: str,
    room: str,
    user: str,
    text: str,
    msg_id: str | None = None,
    who: Identity | None = None,
    expect: int = 201,
) -> dict[str, Any]:
    """Post as `who` (a fresh identity when None); asserts the status `expect`."""
    body = {"user": user, "text": text}
    if msg_id:
        body["id"] = msg_id
    who = who or await new_identity(http, base)
    return await post_message(http, base, room, who, body, expect=expect)


async def history(http: aiohttp.ClientSession, base: str, room: str, **params: Any) -> list[dict[str, Any]]:
    query = {k: str(v) for k, v in params.items()}
    async with http.get(f"{base}/api/rooms/{room}/messages", params=query) as r:
        assert r.status == 200, await r.text()
        return (await r.json())["messages"]


def dedupe_in_order(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The client's rule: one line per id, ordered by createdAt then id."""
    by_id = {m["id"]: m for m in messages}
    return sorted(by_id.values(), key=lambda m: (m["createdAt"], m["id"]))


async def settle(seconds: float = 0.3) -> None:
    """Give stray deliveries a chance to arrive before asserting that none did."""
    await asyncio.sleep(seconds)
