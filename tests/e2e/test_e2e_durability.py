"""Durability: SIGKILL `python -m emulators` while messages are being posted, start again.

Every message that got a 201 must be stored, and must reach a connected client through the change
feed: either before the kill, or after the restart (the trigger resumes from its checkpoint and
redelivers whatever it had not checkpointed: at-least-once, nothing skipped)."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import uuid
from pathlib import Path

import aiohttp
import pytest
from e2e_helpers import ROOT, ChatClient, history

from emulators.cosmos import start as start_cosmos
from emulators.functions import start as start_functions
from emulators.signalr import start as start_signalr
from emulators.signalr.service_client import ServiceClient
from emulators.smoke import Identity, Listener, new_identity
from tests.conftest import find_free_port

ROOM = "durable"


async def launch(data_dir: Path, ports: dict[str, int]) -> asyncio.subprocess.Process:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "emulators",
        "--data-dir",
        str(data_dir),
        "--port",
        str(ports["app"]),
        "--cosmos-port",
        str(ports["cosmos"]),
        "--signalr-port",
        str(ports["signalr"]),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
        cwd=ROOT,
    )
    assert proc.stdout is not None
    line = await asyncio.wait_for(proc.stdout.readline(), 30)
    assert b"Cosmic Chat is running at" in line, line
    return proc


async def poster(
    http: aiohttp.ClientSession, base: str, who: Identity, acknowledged: list[str], stop: asyncio.Event
) -> None:
    """Post as `who` until the server goes away; remember exactly the ids that got a 201. Each poster is
    its own identity, so the app's default rate limit (20 per 20 s each) covers the 60 posts needed."""
    while not stop.is_set():
        msg_id = str(uuid.uuid4())
        try:
            async with http.post(
                f"{base}/api/rooms/{ROOM}/messages",
                headers=who.headers,
                json={"id": msg_id, "user": "load", "text": f"n{len(acknowledged)}"},
            ) as r:
                if r.status == 201:
                    acknowledged.append(msg_id)
                else:  # a 429 would mean the limit, not the kill: wait instead of spinning
                    await asyncio.sleep(0.2)
        except (TimeoutError, aiohttp.ClientError):
            return


@pytest.mark.slow
async def test_sigkill_while_posting_then_restart_loses_nothing(tmp_path):
    ports = {"app": find_free_port(), "cosmos": find_free_port(), "signalr": find_free_port()}
    base = f"http://127.0.0.1:{ports['app']}"
    acknowledged: list[str] = []
    proc = await launch(tmp_path, ports)
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http:
            before = ChatClient(http, base, ROOM)
            await before.connect()
            stop = asyncio.Event()
            # Several posters at once, so the change feed is usually behind when the kill lands.
            writers = [await new_identity(http, base) for _ in range(8)]
            tasks = [asyncio.create_task(poster(http, base, who, acknowledged, stop)) for who in writers]
            while len(acknowledged) < 60:
                await asyncio.sleep(0.005)
            os.kill(proc.pid, signal.SIGKILL)  # mid-stream: a request may be in flight
            await proc.wait()
            stop.set()
            await asyncio.gather(*tasks)
            received_before = {m["id"] for m in before.received}
            await before.disconnect()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert len(acknowledged) >= 60

    # Restart the same data, with a client connected to the room BEFORE the host (and so its
    # change-feed trigger) comes back, so every redelivery has someone to reach.
    cosmos = await start_cosmos(port=ports["cosmos"], data_dir=tmp_path / "cosmos")
    signalr = await start_signalr(port=0)
    service = ServiceClient(signalr.connection_string)
    info = service.client_connection_info("chat")
    after = Listener(info["url"], info["accessToken"])
    host = None
    try:
        await after.start()
        await service.add_connection_to_group("chat", ROOM, after.connection_id)
        host = await start_functions(
            ROOT / "functions",
            port=0,
            settings_overrides={
                "CosmosDBConnection": cosmos.connection_string,
                "AzureSignalRConnectionString": signalr.connection_string,
            },
            change_notifier=cosmos.subscribe,
            notifier_endpoint=cosmos.url,
        )
        missing = set(acknowledged) - received_before
        print(f"acknowledged {len(acknowledged)}, delivered before the kill {len(received_before)}")
        assert await after.wait_for(lambda ms: missing <= {m["id"] for m in ms}, 15), (
            f"{len(missing - {m['id'] for m in after.messages})} acknowledged messages were never delivered"
        )
        async with aiohttp.ClientSession() as http:
            stored = {m["id"] for m in await history(http, host.url, ROOM, limit=200)}
        assert set(acknowledged) <= stored
    finally:
        await after.stop()
        if host is not None:
            await host.close()
        await service.close()
        await signalr.close()
        await cosmos.close()

    # And `python -m emulators` itself comes back on the same data and stops cleanly on SIGTERM.
    proc = await launch(tmp_path, ports)
    try:
        async with aiohttp.ClientSession() as http:
            stored = {m["id"] for m in await history(http, base, ROOM, limit=200)}
        assert set(acknowledged) <= stored
    finally:
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 15) == 0


async def test_port_in_use_is_a_one_line_error(free_port):
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", free_port))
        busy.listen()
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "emulators",
            "--in-memory",
            "--port",
            str(free_port),
            "--cosmos-port",
            str(find_free_port()),
            "--signalr-port",
            str(find_free_port()),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            cwd=ROOT,
        )
        out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode != 0
    assert err.decode().strip() == f"error: port {free_port} (Functions host) is already in use"
    assert out == b""
