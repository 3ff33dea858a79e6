"""Fixtures: a real emulator on a free port, a server-side client, a negotiate function, Node clients."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from signalr_helpers import NodeClient

from emulators.signalr import WELL_KNOWN_ACCESS_KEY, Emulator, start
from emulators.signalr.service_client import ServiceClient


@pytest.fixture
async def emulator(free_port: int) -> AsyncIterator[Emulator]:
    """On a port picked by tests/conftest.py's ``free_port`` (like the local stack, not port 0)."""
    emu = await start(host="127.0.0.1", port=free_port, key=WELL_KNOWN_ACCESS_KEY)
    yield emu
    await emu.close()


@pytest.fixture
async def service(emulator: Emulator) -> AsyncIterator[ServiceClient]:
    async with ServiceClient(emulator.connection_string) as client:
        yield client


@pytest.fixture
async def negotiate_url(service: ServiceClient) -> AsyncIterator[str]:
    """Stand-in for the app's negotiate Function: ``POST /api/negotiate?user=..[&authSeconds=..]`` →
    ``{url, accessToken}``."""

    signed_in: set[str | None] = set()

    async def negotiate(request: web.Request) -> web.Response:
        user = request.query.get("user")
        # authSeconds: the user's first sign-in ends that soon (the service closes the connection then);
        # the next negotiate signs the user in for good
        auth_for = request.query.get("authSeconds") if user not in signed_in else None
        signed_in.add(user)
        info = service.client_connection_info(
            "chat", user_id=user, auth_expires_on=time.time() + float(auth_for) if auth_for else None)
        return web.json_response(info, headers={"Access-Control-Allow-Origin": "*"})

    app = web.Application()
    app.router.add_post("/api/negotiate", negotiate)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()  # the kernel picks the port
    port = runner.addresses[0][1]
    yield f"http://127.0.0.1:{port}/api"
    await runner.cleanup()


@pytest.fixture
async def node_clients() -> AsyncIterator[list[NodeClient]]:
    """Start clients with ``NodeClient.start`` and append them here: they are stopped after the test."""
    clients: list[NodeClient] = []
    yield clients
    for client in clients:
        await client.stop()
