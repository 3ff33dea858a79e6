"""pysignalr and signalrcore (PyPI), unmodified, connect to the emulator and receive."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator
from typing import Any

import pytest
from pysignalr.client import SignalRClient
from pysignalr.messages import CompletionMessage
from signalrcore.hub_connection_builder import HubConnectionBuilder
from signalrcore.protocol.messagepack_protocol import MessagePackHubProtocol
from signalrcore.types import HttpTransportType

from emulators.signalr import Emulator, start
from emulators.signalr.service_client import ServiceClient


async def _wait_for(predicate: Any, timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.02)


async def _run_pysignalr(client: SignalRClient) -> tuple[asyncio.Task[None], asyncio.Event]:
    opened = asyncio.Event()

    async def on_open() -> None:
        opened.set()

    client.on_open(on_open)
    task = asyncio.create_task(client.run())
    await asyncio.wait_for(opened.wait(), 10)
    return task, opened


async def _stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await task


async def test_pysignalr_through_a_negotiate_function(negotiate_url: str, service: ServiceClient,
                                                     emulator: Emulator) -> None:
    """The Azure redirect: the negotiate function answers {url, accessToken}; pysignalr then opens the WS."""
    received: list[list[Any]] = []

    async def on_message(args: list[Any]) -> None:
        received.append(args)

    client = SignalRClient(f"{negotiate_url}?user=zoe")
    client.on("newMessage", on_message)
    task, _ = await _run_pysignalr(client)
    try:
        await _wait_for(lambda: emulator.stats()["connections"]["WebSockets"] == 1)
        await service.broadcast("chat", "newMessage", ["to all", {"k": "v"}])
        await service.send_to_user("chat", "zoe", "newMessage", ["to zoe"])
        await _wait_for(lambda: len(received) == 2)
        assert received == [["to all", {"k": "v"}], ["to zoe"]]
    finally:
        await _stop(task)


async def test_pysignalr_direct_with_token_header_and_invocation_error(service: ServiceClient,
                                                                      emulator: Emulator) -> None:
    info = service.client_connection_info("chat", user_id="yan")
    client = SignalRClient(info["url"], headers={"Authorization": f"Bearer {info['accessToken']}"})
    received: list[list[Any]] = []
    completions: list[CompletionMessage] = []

    async def on_message(args: list[Any]) -> None:
        received.append(args)

    async def on_completion(message: CompletionMessage) -> None:
        completions.append(message)

    client.on("newMessage", on_message)
    client.on_error(on_completion)  # pysignalr routes error completions to on_error
    task, _ = await _run_pysignalr(client)
    try:
        await _wait_for(lambda: bool(emulator.state.hub("chat").users.get("yan")))
        (conn,) = emulator.state.hub("chat").users["yan"]
        await service.add_connection_to_group("chat", "g", conn.id)
        await service.send_to_group("chat", "g", "newMessage", ["group"])
        await _wait_for(lambda: received == [["group"]])
        await client.send("Echo", ["x"], on_invocation=on_message)
        await _wait_for(lambda: len(completions) == 1)
        assert "serverless" in (completions[0].error or "")
    finally:
        await _stop(task)


@pytest.fixture
async def fast_pinging_emulator() -> AsyncIterator[Emulator]:
    """signalrcore's stop() joins a reader blocked in recv(): frequent pings let it return quickly."""
    emu = await start(port=0, keepalive_interval=0.3)
    yield emu
    await emu.close()


@pytest.mark.parametrize(("transport", "protocol"), [
    ("WebSockets", "json"), ("WebSockets", "messagepack"), ("ServerSentEvents", "json"),
    ("LongPolling", "json"),
])
async def test_signalrcore_receives(transport: str, protocol: str, fast_pinging_emulator: Emulator) -> None:
    emu = fast_pinging_emulator
    async with ServiceClient(emu.connection_string) as service:
        info = service.client_connection_info("chat", user_id="sam")
        received: list[list[Any]] = []
        opened = threading.Event()

        def connect() -> Any:
            builder = HubConnectionBuilder().with_url(info["url"], options={
                "access_token_factory": lambda: info["accessToken"],
                "transport": HttpTransportType(transport)})
            if protocol == "messagepack":
                builder = builder.with_hub_protocol(MessagePackHubProtocol())
            hub = builder.build()
            hub.on_open(opened.set)
            hub.on("newMessage", received.append)
            hub.start()
            assert opened.wait(10)
            return hub

        hub = await asyncio.to_thread(connect)
        try:
            await _wait_for(lambda: emu.stats()["connections"][transport] == 1)
            # One at a time: signalrcore's long-polling reader hands on only the first record of a
            # poll response that carries several (its bug), and the service does batch them.
            await service.broadcast("chat", "newMessage", ["hello", 2])
            await _wait_for(lambda: len(received) == 1)
            await service.send_to_user("chat", "sam", "newMessage", ["sam only"])
            await _wait_for(lambda: len(received) == 2)
            assert received == [["hello", 2], ["sam only"]]
        finally:
            await asyncio.wait_for(asyncio.to_thread(hub.stop), 10)
        await _wait_for(lambda: emu.stats()["connections"]["total"] == 0)
