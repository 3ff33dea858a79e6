"""Fixtures for the end-to-end tests: the whole local stack (Cosmos DB emulator, SignalR emulator,
Functions host running the real `functions/` app) in this process on free ports."""

from __future__ import annotations

import aiohttp
import pytest
from e2e_helpers import stack_args

from emulators.__main__ import Stack


@pytest.fixture
async def stack():
    s = Stack()
    try:
        await s.start(stack_args())
        yield s
    finally:
        await s.close()


@pytest.fixture
async def http():
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15)) as session:
        yield session


