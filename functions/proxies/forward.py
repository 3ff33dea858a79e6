"""Forwarding to an external backend with aiohttp: bounded in time and size, never blocking the event loop.

The Python v2 HttpResponse is buffered, so the backend body is read in chunks up to a cap and returned
whole; an over-long body is a 502 rather than unbounded memory. Timeouts → 504, connection failures → 502."""

from __future__ import annotations

import asyncio
import os
import weakref
from dataclasses import dataclass

import aiohttp

HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
    }
)
MAX_BODY = 10 * 1024 * 1024
CHUNK = 64 * 1024

_sessions: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, aiohttp.ClientSession] = (
    weakref.WeakKeyDictionary()
)


@dataclass
class BackendResponse:
    status: int
    headers: dict[str, str]
    body: bytes


class ForwardError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def timeouts() -> aiohttp.ClientTimeout:
    total = float(os.environ.get("PROXY_TIMEOUT_SECONDS", "30"))
    return aiohttp.ClientTimeout(total=total, connect=min(total, 10.0))


def _session() -> aiohttp.ClientSession:
    """One pooled session per event loop, so keep-alive connections are reused across invocations."""
    loop = asyncio.get_running_loop()
    session = _sessions.get(loop)
    if session is None or session.closed:
        session = aiohttp.ClientSession(auto_decompress=False, cookie_jar=aiohttp.DummyCookieJar())
        _sessions[loop] = session
    return session


async def close_sessions() -> None:
    loop = asyncio.get_running_loop()
    session = _sessions.pop(loop, None)
    if session is not None:
        await session.close()


def clean_headers(headers: dict[str, str] | object) -> dict[str, str]:
    return {k: v for k, v in headers.items() if k.lower() not in HOP_BY_HOP}  # type: ignore[attr-defined]


async def forward(method: str, url: str, headers: dict[str, str], body: bytes) -> BackendResponse:
    try:
        async with _session().request(
            method,
            url,
            headers=clean_headers(headers),
            data=body or None,
            allow_redirects=False,
            timeout=timeouts(),
        ) as response:
            chunks: list[bytes] = []
            size = 0
            async for chunk in response.content.iter_chunked(CHUNK):
                size += len(chunk)
                if size > MAX_BODY:
                    raise ForwardError(
                        502, "backend_too_large", f"the backend answered more than {MAX_BODY} bytes"
                    )
                chunks.append(chunk)
            return BackendResponse(response.status, clean_headers(response.headers), b"".join(chunks))
    except TimeoutError:
        raise ForwardError(504, "backend_timeout", "the backend did not answer in time") from None
    except aiohttp.ClientError as error:
        raise ForwardError(
            502, "backend_unreachable", f"the backend failed: {type(error).__name__}"
        ) from None
