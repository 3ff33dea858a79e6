"""Fixtures: real emulators on free ports (in-process on a background loop, or as a subprocess)."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from azure.cosmos import CosmosClient, PartitionKey
from cosmos_testkit import EmulatorProcess

from emulators.cosmos import WELL_KNOWN_KEY, Emulator, start


@dataclass
class Running:
    emu: Emulator
    loop: asyncio.AbstractEventLoop

    @property
    def url(self) -> str:
        return self.emu.url

    def call(self, coro: Any, timeout: float = 10) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)


def run_in_thread(data_dir: Path | None = None) -> tuple[Running, threading.Thread]:
    loop = asyncio.new_event_loop()
    ready: dict[str, Any] = {}
    started = threading.Event()

    def main() -> None:
        asyncio.set_event_loop(loop)
        ready["emu"] = loop.run_until_complete(start(port=0, data_dir=data_dir))
        started.set()
        loop.run_forever()

    thread = threading.Thread(target=main, daemon=True, name="cosmos-emulator")
    thread.start()
    assert started.wait(10)
    return Running(ready["emu"], loop), thread


def stop_thread(running: Running, thread: threading.Thread) -> None:
    running.call(running.emu.close())
    running.loop.call_soon_threadsafe(running.loop.stop)
    thread.join(5)


@pytest.fixture(scope="session")
def emulator() -> Iterator[Running]:
    running, thread = run_in_thread(None)
    yield running
    stop_thread(running, thread)


@pytest.fixture(scope="session")
def client(emulator: Running) -> CosmosClient:
    return CosmosClient(emulator.url, credential=WELL_KNOWN_KEY)


@pytest.fixture
def container(client: CosmosClient) -> Any:
    db = client.create_database_if_not_exists("compat")
    name = f"c{uuid.uuid4().hex[:10]}"
    c = db.create_container(name, PartitionKey(path="/pk"))
    yield c
    db.delete_container(name)


@pytest.fixture
def emulator_process(tmp_path: Path) -> Iterator[EmulatorProcess]:
    p = EmulatorProcess(tmp_path / "data")
    p.start()
    yield p
    if p.proc and p.proc.poll() is None:
        p.kill()
