"""``python -m emulators.signalr``: one start-up line, serves, and shuts down cleanly on SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import re
import signal
import sys
from pathlib import Path

import pytest
from signalr_helpers import RawClient

from emulators.signalr import WELL_KNOWN_ACCESS_KEY
from emulators.signalr.service_client import ServiceClient, SignalRServiceError

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize(("sig", "key"), [(signal.SIGTERM, WELL_KNOWN_ACCESS_KEY),
                                          (signal.SIGINT, "my-own-key-" * 4)])
async def test_runs_alone_and_stops_cleanly(sig: signal.Signals, key: str) -> None:
    extra = [] if key == WELL_KNOWN_ACCESS_KEY else ["--key", key]
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "emulators.signalr",
        "--port",
        "0",
        "--log-level",
        "WARNING",
        *extra,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), 15)).decode()
        url = re.search(r"on (http://127\.0\.0\.1:\d+)", line)
        assert url, line
        assert key not in line  # the key is not printed
        assert ("well-known" in line) == (key == WELL_KNOWN_ACCESS_KEY)
        port = int(url.group(1).rsplit(":", 1)[1])
        conn_str = f"Endpoint=http://127.0.0.1;Port={port};AccessKey={key};"
        other_key = conn_str.replace(key, "K" * 44)
        async with ServiceClient(other_key) as wrong:
            with pytest.raises(SignalRServiceError, match="401"):
                await wrong.broadcast("chat", "m", [])
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
