"""One log line per request: method, path, status, duration, and what the handlers noted on the way.

Handlers call :func:`note` instead of logging themselves, so a negotiate, a refused token or a whole
WebSocket session (handshake, protocol, why it ended) reads as one line, written when the request
ends. The query string is never logged: it may carry ``access_token`` or a connection token.
"""

from __future__ import annotations

import asyncio
import logging
import time

from aiohttp import web
from aiohttp.typedefs import Handler

log = logging.getLogger("emulators.signalr")

_NOTES: web.RequestKey[list[str]] = web.RequestKey("signalr_log_notes", list)


def note(request: web.Request, text: str) -> None:
    """Add a detail (no secrets) to this request's log line."""
    request.setdefault(_NOTES, []).append(text)


@web.middleware
async def request_log(request: web.Request, handler: Handler) -> web.StreamResponse:
    started = time.monotonic()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    except asyncio.CancelledError:
        status = 499  # the client went away mid-request (nginx's code for it)
        raise
    finally:
        notes = request.get(_NOTES)
        detail = _one_line("; ".join(notes)) if notes else ""
        # the raw (still percent-encoded) path: a decoded %0A must not start a forged line
        log.info("%s %s -> %d (%.1f ms)%s", request.method, request.rel_url.raw_path, status,
                 (time.monotonic() - started) * 1000, ": " + detail if detail else "")


def _one_line(text: str) -> str:
    """Control characters (from names in paths or bodies) escaped, so a note never breaks the line."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
