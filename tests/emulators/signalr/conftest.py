"""Fixtures: a real emulator on a free port, a server-side client, a negotiate function, Node clients."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from signalr_helpers import NodeClient

from emulators.signalr import WELL_KNOWN_ACCESS_KEY, Emulator, start
from emulators.signalr.service_client import ServiceClient


def find_free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
async def emulator() -> AsyncIterator[Emulator]:
    emu = await start(host="127.0.0.1", port=find_free_port(), key=WELL_KNOWN_ACCESS_KEY)
    yield emu
    await emu.close()


@pytest.fixture
async def service(emulator: Emulator) -> AsyncIterator[ServiceClient]:
    async with ServiceClient(emulator.connection_string) as client:
        yield client


@pytest.fixture
async def negotiate_url(service: ServiceClient) -> AsyncIterator[str]:
    """Stand-in for the app's negotiate Function: ``POST /api/negotiate?user=..`` → ``{url, accessToken}``."""

    async def negotiate(request: web.Request) -> web.Response:
        info = service.client_connection_info("chat", user_id=request.query.get("user"))
        return web.json_response(info, headers={"Access-Control-Allow-Origin": "*"})

    app = web.Application()
    app.router.add_post("/api/negotiate", negotiate)
    runner = web.AppRunner(app)
    await runner.setup()
    port = find_free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield f"http://127.0.0.1:{port}/api"
    await runner.cleanup()


@pytest.fixture
async def node_clients() -> AsyncIterator[list[NodeClient]]:
    """Start clients with ``NodeClient.start`` and append them here: they are stopped after the test."""
    clients: list[NodeClient] = []
    yield clients
    for client in clients:
        await client.stop()
