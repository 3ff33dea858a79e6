"""Helpers shared by the SignalR emulator tests (a module of its own: test packages have no __init__)."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

JS_CLIENT = Path(__file__).resolve().parents[3] / "tests" / "js" / "signalr_client.mjs"


class NodeClient:
    """One ``@microsoft/signalr`` HubConnection in a Node subprocess, driven over stdin/stdout JSON lines."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.events: list[dict[str, Any]] = []

    @classmethod
    async def start(cls, **options: Any) -> NodeClient:
        options.setdefault("methods", ["newMessage"])
        proc = await asyncio.create_subprocess_exec(
            "node", str(JS_CLIENT), json.dumps(options), cwd=JS_CLIENT.parent,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            env={**os.environ, "NODE_NO_WARNINGS": "1"})
        return cls(proc)

    async def next(self, event: str | None = None, timeout: float = 10.0) -> dict[str, Any]:
        """The next line (of the given event kind, skipping others)."""
        assert self.proc.stdout is not None
        while True:
            line = await asyncio.wait_for(self.proc.stdout.readline(), timeout)
            if not line:
                stderr = await self.proc.stderr.read() if self.proc.stderr else b""
                raise AssertionError(f"node client exited; stderr: {stderr.decode()[-2000:]}")
            item = json.loads(line)
            self.events.append(item)
            if event is None or item["event"] == event:
                return item

    async def connected(self) -> dict[str, Any]:
        first = await self.next()
        assert first["event"] == "connected", first
        return first

    async def messages(self, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        return [await self.next("message", timeout) for _ in range(count)]

    async def command(self, **command: Any) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write((json.dumps(command) + "\n").encode())
        await self.proc.stdin.drain()

    async def stop(self) -> None:
        if self.proc.returncode is None:
            try:
                await self.command(cmd="stop")
                await asyncio.wait_for(self.proc.wait(), 5)
            except (TimeoutError, ConnectionError):
                self.proc.kill()
                await self.proc.wait()


class RawClient:
    """A bare WebSocket hub client (aiohttp, JSON protocol): fast to start, free to misbehave on purpose."""

    def __init__(self, session: Any, ws: Any, connection_id: str | None) -> None:
        self.session = session
        self.ws = ws
        self.connection_id = connection_id
        self.messages: list[dict[str, Any]] = []

    @classmethod
    async def connect(cls, base_url: str, token: str, hub: str = "chat", handshake: bool = True,
                      negotiate: bool = True) -> RawClient:
        import aiohttp

        session = aiohttp.ClientSession()
        headers = {"Authorization": f"Bearer {token}"}
        url = f"{base_url}/client/?hub={hub}"
        connection_id = None
        try:
            if negotiate:
                async with session.post(f"{base_url}/client/negotiate?hub={hub}&negotiateVersion=1",
                                        headers=headers) as response:
                    assert response.status == 200, await response.text()
                    body = await response.json()
                connection_id = body["connectionId"]
                url += f"&id={body['connectionToken']}"
            ws = await session.ws_connect(url, headers=headers)
        except BaseException:
            await session.close()
            raise
        client = cls(session, ws, connection_id)
        if handshake:
            await ws.send_str('{"protocol":"json","version":1}\x1e')
            reply = await client.receive_raw()
            assert reply == "{}\x1e", reply
        return client

    async def receive_raw(self, timeout: float = 5.0) -> Any:
        import aiohttp

        msg = await asyncio.wait_for(self.ws.receive(), timeout)
        if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING):
            return None
        return msg.data

    async def next(self, timeout: float = 5.0, skip_pings: bool = True) -> dict[str, Any] | None:
        """The next hub message, or None once the socket closed."""
        while not self.messages:
            data = await self.receive_raw(timeout)
            if data is None:
                return None
            if isinstance(data, bytes):
                data = data.decode()
            for record in data.split("\x1e")[:-1]:
                message = json.loads(record)
                if not (skip_pings and message.get("type") == 6):
                    self.messages.append(message)
        return self.messages.pop(0)

    async def send(self, text: str) -> None:
        await self.ws.send_str(text)

    async def close(self) -> None:
        await self.ws.close()
        await self.session.close()
