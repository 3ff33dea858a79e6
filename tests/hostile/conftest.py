"""The live local stack for the hostile-input tests: `python -m emulators --in-memory` in its own process on
free ports, started once for the package (hostile requests must not need a fresh server each). It keeps the
app's default rate limits: the tests post as a fresh identity whenever they post more than a person would
(`identity()`); `run_stack(settings)` starts another with app settings of its own (e.g. a small limit)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass

import aiohttp
import pytest

from emulators.smoke import Identity, new_identity
from tests.conftest import ROOT, find_free_port


@dataclass
class LiveStack:
    base: str
    cosmos_url: str
    signalr_url: str
    proc: subprocess.Popen[bytes]

    def alive(self) -> bool:
        return self.proc.poll() is None


@pytest.fixture(scope="session")
def live() -> Iterator[LiveStack]:
    yield from run_stack()


async def identity(base: str) -> Identity:
    """A fresh identity from the stack at `base` (`POST /api/identities`)."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15)) as http:
        return await new_identity(http, base)


def run_stack(settings: dict[str, str] | None = None) -> Iterator[LiveStack]:
    """`settings`: app settings for the host, through the environment (it wins over local.settings.json)."""
    app, cosmos, signalr = find_free_port(), find_free_port(), find_free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "emulators",
            "--in-memory",
            "--port",
            str(app),
            "--cosmos-port",
            str(cosmos),
            "--signalr-port",
            str(signalr),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env={**os.environ, **(settings or {})},
    )
    assert proc.stdout is not None
    deadline = time.monotonic() + 40
    line = proc.stdout.readline()
    assert b"Cosmic Chat is running at" in line and time.monotonic() < deadline, line
    try:
        yield LiveStack(
            f"http://127.0.0.1:{app}", f"http://127.0.0.1:{cosmos}/", f"http://127.0.0.1:{signalr}", proc
        )
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
