"""Fixtures: real emulators on free ports (in-process on a background loop, or as a subprocess)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from email.utils import formatdate
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import requests
from azure.cosmos import CosmosClient, PartitionKey

from emulators.cosmos import WELL_KNOWN_KEY, Emulator, start
from tests.conftest import ROOT, find_free_port


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


class EmulatorProcess:
    """``python -m emulators.cosmos`` in a subprocess: killable with SIGKILL, restartable on the same data."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.port = find_free_port()
        self.proc: subprocess.Popen[str] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def start(self) -> None:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "emulators.cosmos",
                "--port",
                str(self.port),
                "--data-dir",
                str(self.data_dir),
                "--log-level",
                "WARNING",
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        assert "listening on" in line, line

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(10)

    def terminate(self) -> int:
        assert self.proc is not None
        self.proc.terminate()
        return self.proc.wait(10)


@pytest.fixture
def emulator_process(tmp_path: Path) -> Iterator[EmulatorProcess]:
    p = EmulatorProcess(tmp_path / "data")
    p.start()
    yield p
    if p.proc and p.proc.poll() is None:
        p.kill()


def signed_headers(
    verb: str, rtype: str, link: str, key: str = WELL_KNOWN_KEY, date: str | None = None
) -> dict[str, str]:
    """Sign a raw request the way the service documents it (independent of the emulator's code)."""
    date = date or formatdate(usegmt=True)
    text = f"{verb.lower()}\n{rtype.lower()}\n{link}\n{date.lower()}\n\n"
    sig = base64.b64encode(hmac.new(base64.b64decode(key), text.encode(), hashlib.sha256).digest()).decode()
    return {
        "authorization": quote(f"type=master&ver=1.0&sig={sig}", safe="-_.!~*'()"),
        "x-ms-date": date,
        "x-ms-version": "2020-07-15",
    }


def raw(
    emulator_url: str,
    verb: str,
    path: str,
    rtype: str,
    link: str,
    body: Any = None,
    headers: dict[str, str] | None = None,
    **kw: Any,
) -> requests.Response:
    h = signed_headers(verb, rtype, link, **kw)
    h.update(headers or {})
    return requests.request(verb, emulator_url.rstrip("/") + path, data=body, headers=h, timeout=10)
