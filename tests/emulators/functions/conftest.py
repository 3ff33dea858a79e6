"""Fixtures: a running local Functions host over one of the small test apps in `apps/`."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest
from fnhost_helpers import start_services

from emulators.functions import start

APPS = Path(__file__).parent / "apps"


@pytest.fixture
async def basic_host():
    host = await start(APPS / "basic", port=0, create_local_settings=False,
                       settings_overrides={"GREETING": "hi"})
    try:
        yield host
    finally:
        await host.close()


@pytest.fixture
async def http():
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
async def services():
    """Both emulators in-process (Cosmos DB in memory), with the test database and containers."""
    cosmos, signalr = await start_services()
    try:
        yield cosmos, signalr
    finally:
        await signalr.close()
        await cosmos.close()
