"""Fixtures for the Function App: its directory on sys.path and a freshly imported function_app."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest

# Not imported from functions_testkit: that module is importable only once this directory is on sys.path,
# which pytest does for test modules, not necessarily before this conftest runs.
FUNCTIONS = Path(__file__).resolve().parents[2] / "functions"
if str(FUNCTIONS) not in sys.path:
    sys.path.insert(0, str(FUNCTIONS))


@pytest.fixture
def app_module(monkeypatch: pytest.MonkeyPatch):
    """function_app imported afresh, so decorators see the environment the test sets up."""
    monkeypatch.delenv("CHAT_REQUIRE_AUTH", raising=False)
    sys.modules.pop("function_app", None)
    module = importlib.import_module("function_app")
    yield module
    sys.modules.pop("function_app", None)
