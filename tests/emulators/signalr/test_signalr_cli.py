"""``python -m emulators.signalr``: one start-up line, serves, and shuts down cleanly on SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import re
import signal
import sys
from pathlib import Path

import pytest
from signalr_helpers import RawClient

from emulators.signalr.service_client import ServiceClient

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
async def test_runs_alone_and_stops_cleanly(sig: signal.Signals) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "emulators.signalr",
        "--port",
        "0",
        "--log-level",
        "WARNING",
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), 15)).decode()
        url = re.search(r"on (http://127\.0\.0\.1:\d+)", line)
        assert url, line
        assert "ABCDEFGH" not in line  # the key is not printed
        port = int(url.group(1).rsplit(":", 1)[1])
        conn_str = (
            f"Endpoint=http://127.0.0.1;Port={port};AccessKey=ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789ABCDEFGH;"
        )
        async with ServiceClient(conn_str) as service:
            client = await RawClient.connect(
                url.group(1), service.client_connection_info("chat")["accessToken"]
            )
            await service.broadcast("chat", "m", ["up"])
            assert (await client.next())["arguments"] == ["up"]
            proc.send_signal(sig)
            goodbye = await client.next()
            assert goodbye == {"type": 7, "error": "The service is shutting down.", "allowReconnect": True}
            await client.close()
        assert await asyncio.wait_for(proc.wait(), 10) == 0
        assert (await proc.stdout.read()) == b""  # exactly one line
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
