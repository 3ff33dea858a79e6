"""Forwarding to an external backend with aiohttp, buffered: the whole answer is read, then returned.

The app runs in the worker's classic HTTP mode (no HTTP streams: there the response would leave before the
output bindings are stored, docs/parity.md), so a response body is always in memory. What keeps that safe is
bounding it: a backend that announces or sends more than `PROXY_MAX_RESPONSE_BYTES` → 502 (nothing beyond
the cap is read), one that does not answer in full within `PROXY_TIMEOUT_SECONDS` → 504, one that cannot be
reached or breaks off → 502. The client always gets a whole answer or a clear error, never a cut body."""

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
DEFAULT_TIMEOUT_SECONDS = 30.0
DEFAULT_MAX_RESPONSE_BYTES = 8 * 1024 * 1024

_sessions: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, aiohttp.ClientSession] = (
    weakref.WeakKeyDictionary()
)


@dataclass(frozen=True)
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


def max_response_bytes() -> int:
    return int(os.environ.get("PROXY_MAX_RESPONSE_BYTES", DEFAULT_MAX_RESPONSE_BYTES))


def timeouts() -> aiohttp.ClientTimeout:
    """`total` bounds the whole exchange, body included: the answer is complete or it is a 504."""
    total = float(os.environ.get("PROXY_TIMEOUT_SECONDS", DEFAULT_TIMEOUT_SECONDS))
    return aiohttp.ClientTimeout(total=total, connect=min(total, 10.0))


def _new_session() -> aiohttp.ClientSession:
    """Bodies pass through byte for byte (no decompression); no cookie is ever kept across callers."""
    return aiohttp.ClientSession(auto_decompress=False, cookie_jar=aiohttp.DummyCookieJar())


def _session() -> aiohttp.ClientSession:
    """One pooled session per event loop, so keep-alive connections are reused across invocations."""
    loop = asyncio.get_running_loop()
    session = _sessions.get(loop)
    if session is None or session.closed:
        session = _sessions[loop] = _new_session()
    return session


async def close_sessions() -> None:
    loop = asyncio.get_running_loop()
    session = _sessions.pop(loop, None)
    if session is not None:
        await session.close()


def clean_headers(headers: dict[str, str] | object) -> dict[str, str]:
    return {k: v for k, v in headers.items() if k.lower() not in HOP_BY_HOP}  # type: ignore[attr-defined]


def _too_large(cap: int) -> ForwardError:
    return ForwardError(502, "backend_too_large", f"the backend's answer is over {cap} bytes")


async def _read_capped(response: aiohttp.ClientResponse, cap: int, read_body: bool) -> bytes:
    if response.content_length is not None and response.content_length > cap:
        raise _too_large(cap)  # refused on the announcement: not a byte of it is read
    if not read_body:
        return b""
    parts: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_any():
        size += len(chunk)
        if size > cap:
            raise _too_large(cap)
        parts.append(chunk)
    return b"".join(parts)


async def fetch(
    method: str, url: str, headers: dict[str, str], body: bytes, pooled: bool = True
) -> BackendResponse:
    """One exchange with a backend. `pooled=False`: a session of its own, closed at the end, for rare calls
    (this app calling itself for the /api/config alias), so that no pooled session outlives the worker."""
    own = None if pooled else _new_session()
    cap = max_response_bytes()
    try:
        async with (own or _session()).request(
            method,
            url,
            headers=clean_headers(headers),
            data=body or None,
            allow_redirects=False,
            timeout=timeouts(),
        ) as response:
            content = await _read_capped(response, cap, read_body=method != "HEAD")
            return BackendResponse(response.status, clean_headers(response.headers), content)
    except TimeoutError:
        raise ForwardError(504, "backend_timeout", "the backend did not answer in time") from None
    except aiohttp.ClientError as error:
        raise ForwardError(
            502, "backend_unreachable", f"the backend failed: {type(error).__name__}"
        ) from None
    finally:
        if own is not None:
            await own.close()
