"""Forwarding to an external backend with aiohttp, streamed: the backend's body goes to the client chunk by
chunk as it arrives (HTTP streams, chat/fastapi_edge.py), so memory stays bounded whatever its size.

Until the backend's status line and headers arrive, failures are answers: connect/read timeouts → 504,
connection failures → 502. After that the status is sent; a backend that stalls longer than the read
timeout between two chunks, or breaks off, cuts the client's response short (its connection closes before
the end of the chunked body), which is how HTTP says "incomplete"."""

from __future__ import annotations

import asyncio
import os
import weakref
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

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

_sessions: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, aiohttp.ClientSession] = (
    weakref.WeakKeyDictionary()
)


@dataclass
class BackendStream:
    """An open backend response: status and headers now, the body by `chunks()`, released at its end (or
    by `close()` when the body is not wanted: HEAD, a body override)."""

    status: int
    headers: dict[str, str]
    response: aiohttp.ClientResponse
    own_session: aiohttp.ClientSession | None = None  # closed with the stream (see `open_stream`)
    _closing: asyncio.Task[None] | None = field(default=None, init=False, repr=False)  # kept from GC

    async def chunks(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self.response.content.iter_any():
                yield chunk
        except TimeoutError:
            raise ForwardError(504, "backend_timeout", "the backend stalled mid-body") from None
        except aiohttp.ClientError as error:
            broke = f"the backend broke off: {type(error).__name__}"
            raise ForwardError(502, "backend_unreachable", broke) from None
        finally:
            self.response.release()
            if self.own_session is not None:
                await self.own_session.close()

    def close(self) -> None:
        self.response.close()
        if self.own_session is not None:
            self._closing = asyncio.get_running_loop().create_task(self.own_session.close())


class ForwardError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def timeouts() -> aiohttp.ClientTimeout:
    """No total: a stream may rightly last long. What is bounded is waiting: for the connection, and for
    each read (the headers, then every chunk)."""
    idle = float(os.environ.get("PROXY_TIMEOUT_SECONDS", "30"))
    return aiohttp.ClientTimeout(total=None, connect=min(idle, 10.0), sock_read=idle)


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


async def open_stream(
    method: str, url: str, headers: dict[str, str], body: bytes, pooled: bool = True
) -> BackendStream:
    """`pooled=False`: a session of its own, closed with the stream. For rare calls (this app calling
    itself for the /api/config alias), so that no pooled session outlives the worker unclosed."""
    own = None if pooled else _new_session()
    try:
        response = await (own or _session()).request(
            method,
            url,
            headers=clean_headers(headers),
            data=body or None,
            allow_redirects=False,
            timeout=timeouts(),
        )
    except (TimeoutError, aiohttp.ClientError) as error:
        if own is not None:
            await own.close()
        if isinstance(error, TimeoutError):
            raise ForwardError(504, "backend_timeout", "the backend did not answer in time") from None
        raise ForwardError(
            502, "backend_unreachable", f"the backend failed: {type(error).__name__}"
        ) from None
    return BackendStream(response.status, clean_headers(response.headers), response, own)
