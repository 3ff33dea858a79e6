"""The live local stack for the hostile-input tests: `python -m emulators --in-memory` in its own process on
free ports, started once for the package (hostile requests must not need a fresh server each)."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

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


def run_stack() -> Iterator[LiveStack]:
    app, cosmos, signalr = find_free_port(), find_free_port(), find_free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "emulators", "--in-memory", "--port", str(app), "--cosmos-port", str(cosmos),
         "--signalr-port", str(signalr)], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert proc.stdout is not None
    deadline = time.monotonic() + 40
    line = proc.stdout.readline()
    assert b"Cosmic Chat is running at" in line and time.monotonic() < deadline, line
    try:
        yield LiveStack(f"http://127.0.0.1:{app}", f"http://127.0.0.1:{cosmos}/", f"http://127.0.0.1:{signalr}",
                        proc)
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
