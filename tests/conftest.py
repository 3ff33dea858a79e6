"""Fixtures shared by every test package: free ports and the repository root."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def find_free_port(host: str = "127.0.0.1") -> int:
    """Ask the kernel for a port nobody is listening on, so parallel runs never collide."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


@pytest.fixture
def free_port() -> int:
    return find_free_port()


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return ROOT
