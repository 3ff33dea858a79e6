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
