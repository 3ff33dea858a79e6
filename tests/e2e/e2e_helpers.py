"""Helpers for the end-to-end tests: the local stack in-process and a client that behaves like the
web client (negotiate, connect, join, post, catch up), over HTTP and pysignalr."""

from __future__ import annotations

import argparse
import asyncio
import uuid
from pathlib import Path
from typing import Any

import aiohttp

from emulators.smoke import Listener

ROOT = Path(__file__).resolve().parent.parent.parent


def stack_args(**kw: Any) -> argparse.Namespace:
    args = {"host": "127.0.0.1", "port": 0, "cosmos_port": 0, "signalr_port": 0, "in_memory": True,
            "data_dir": None, "app_dir": ROOT / "functions", "verbose": False}
    args.update(kw)
    return argparse.Namespace(**args)


def fresh_room(prefix: str = "r") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


class ChatClient:
    """What the web client does, over HTTP + pysignalr: negotiate, connect, join, post, catch up."""

    def __init__(self, http: aiohttp.ClientSession, base: str, room: str) -> None:
        self.http = http
        self.base = base
        self.room = room
        self.listener: Listener | None = None

    async def connect(self) -> None:
        async with self.http.post(f"{self.base}/api/negotiate") as r:
            assert r.status == 200, await r.text()
            info = await r.json()
        self.listener = Listener(info["url"], info["accessToken"])
        await self.listener.start()
        async with self.http.post(f"{self.base}/api/rooms/{self.room}/join",
                                  json={"connectionId": self.listener.connection_id}) as r:
            assert r.status == 202, await r.text()

    async def disconnect(self) -> None:
        if self.listener is not None:
            await self.listener.stop()

    @property
    def received(self) -> list[dict[str, Any]]:
        return [] if self.listener is None else self.listener.messages

    async def wait_for_ids(self, ids: set[str], timeout: float = 10.0) -> bool:
        assert self.listener is not None
        return await self.listener.wait_for(lambda ms: ids <= {m["id"] for m in ms}, timeout)


async def post(http: aiohttp.ClientSession, base: str, room: str, user: str, text: str,
               msg_id: str | None = None) -> dict[str, Any]:
    body = {"user": user, "text": text}
    if msg_id:
        body["id"] = msg_id
    async with http.post(f"{base}/api/rooms/{room}/messages", json=body) as r:
        assert r.status == 201, await r.text()
        return await r.json()


async def history(http: aiohttp.ClientSession, base: str, room: str,
                  **params: Any) -> list[dict[str, Any]]:
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
