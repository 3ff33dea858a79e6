"""Helpers for the Cosmos emulator tests: a subprocess emulator and raw signed requests."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import subprocess
import sys
from email.utils import formatdate
from pathlib import Path
from typing import Any
from urllib.parse import quote

import requests

from emulators.cosmos import WELL_KNOWN_KEY
from tests.conftest import ROOT, find_free_port


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
