"""Fixtures for the Function App: its directory on sys.path and a freshly imported function_app."""

from __future__ import annotations

import importlib
import inspect
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

# Not imported from functions_testkit: that module is importable only once this directory is on sys.path,
# which pytest does for test modules, not necessarily before this conftest runs.
FUNCTIONS = Path(__file__).resolve().parents[2] / "functions"
if str(FUNCTIONS) not in sys.path:
    sys.path.insert(0, str(FUNCTIONS))


class AppModule:
    """function_app with each function as its handler is written: `azure.functions` objects in and out,
    as the worker (classic HTTP mode) and FileServer's in-process dispatch call them."""

    def __init__(self, module: ModuleType) -> None:
        self.module = module

    def __getattr__(self, name: str) -> Any:
        value = getattr(self.module, name)
        built = getattr(value, "_function", value)  # the decorators leave a FunctionBuilder behind
        user_function = getattr(built, "get_user_function", None)
        return inspect.unwrap(user_function()) if callable(user_function) else value


@pytest.fixture
def app_module(monkeypatch: pytest.MonkeyPatch):
    """function_app imported afresh, so decorators see the environment the test sets up."""
    monkeypatch.delenv("CHAT_REQUIRE_AUTH", raising=False)
    sys.modules.pop("function_app", None)
    module = importlib.import_module("function_app")
    yield AppModule(module)
    sys.modules.pop("function_app", None)


@pytest.fixture
async def store(monkeypatch: pytest.MonkeyPatch):
    """A real Cosmos DB emulator (in memory, free port) with the stack's containers, named by the setting the
    app reads (`CosmosDBConnection`); SaveChat, identities and rate limits write to it through the SDK."""
    from chat import cosmos

    from emulators.__main__ import ensure_containers
    from emulators.cosmos import WELL_KNOWN_KEY
    from emulators.cosmos import start as start_cosmos

    emulator = await start_cosmos(port=0)
    try:
        await ensure_containers(emulator.url, WELL_KNOWN_KEY)
        monkeypatch.setenv("CosmosDBConnection", emulator.connection_string)
        yield emulator
    finally:
        await cosmos.close()
        await emulator.close()


@pytest.fixture
async def caller(store, app_module):
    """A fresh identity, issued by the app: (id, the Authorization header value)."""
    from chat import handlers

    response = await handlers.issue_identity(_request("POST", "/api/identities"))
    issued = json.loads(response.get_body())
    return issued["id"], f"Bearer {issued['token']}"


def _request(method: str, path: str) -> Any:
    import azure.functions as func

    return func.HttpRequest(method, f"https://chat.example{path}", headers={}, body=b"")
