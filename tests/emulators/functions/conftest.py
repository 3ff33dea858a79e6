"""Fixtures: a running local Functions host over one of the small test apps in `apps/`."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest

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
