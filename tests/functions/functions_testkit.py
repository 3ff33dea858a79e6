"""Helpers for the Function App tests: request builders and an Out that records (imported by the tests)."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Generic, TypeVar

import azure.functions as func
from aiohttp import web

T = TypeVar("T")

# The Function App's directory. Imported from here, never from conftest: every test package has a conftest.py,
# and `from conftest import ...` gets whichever one pytest imported first (tests/e2e's, in a combined run).
FUNCTIONS = Path(__file__).resolve().parents[2] / "functions"


class Out(func.Out[T], Generic[T]):
    """What the worker hands a handler for an output binding; records whether and what was set."""

    def __init__(self) -> None:
        self.value: T | None = None
        self.calls = 0

    def set(self, val: T) -> None:
        self.value = val
        self.calls += 1

    def get(self) -> T | None:
        return self.value


class RetryContext:
    """`context.retry_context` as the worker builds it (0 and 0 without a retry policy)."""

    def __init__(self, retry_count: int = 0, max_retry_count: int = 0) -> None:
        self.retry_count = retry_count
        self.max_retry_count = max_retry_count
        self.exception = None


class Context:
    """The `context` parameter a function may declare; only what the handlers read."""

    def __init__(self, retry_count: int = 0, max_retry_count: int = 0) -> None:
        self.retry_context = RetryContext(retry_count, max_retry_count)


def request(
    method: str,
    path: str,
    body: bytes | str | dict[str, Any] | None = None,
    params: dict[str, str] | None = None,
    route_params: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
) -> func.HttpRequest:
    if isinstance(body, dict):
        body = json.dumps(body).encode()
    elif isinstance(body, str):
        body = body.encode()
    return func.HttpRequest(
        method,
        f"https://chat.example{path}",
        headers=headers or {},
        params=params or {},
        route_params=route_params or {},
        body=body or b"",
    )


def body_json(response: func.HttpResponse) -> Any:
    return json.loads(response.get_body())


def content_type(response: func.HttpResponse) -> str:
    return response.headers.get("Content-Type") or f"{response.mimetype}; charset={response.charset}"


@contextlib.asynccontextmanager
async def this_app_at(monkeypatch: Any, route: str, handler: Any, method: str = "*") -> AsyncIterator[None]:
    """A stand-in for this app's own origin (a real aiohttp server on 127.0.0.1, named by WEBSITE_HOSTNAME),
    for the proxies that call the app over HTTP."""
    app = web.Application()
    app.router.add_route(method, route, handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    monkeypatch.setenv("WEBSITE_HOSTNAME", f"127.0.0.1:{site._server.sockets[0].getsockname()[1]}")
    try:
        yield
    finally:
        await runner.cleanup()
