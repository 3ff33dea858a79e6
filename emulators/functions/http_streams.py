"""HTTP streams: the request handed to the function as a Starlette Request, its Response streamed back.

In Azure, HTTP streams mode makes the host proxy the raw HTTP request to the Python worker's own web
server, and the function's FastAPI response goes back to the client chunk by chunk. Here the front door
plays both parts over ASGI: the aiohttp request becomes an ASGI scope whose `receive` reads the body as
it arrives, and the returned Response (itself an ASGI app) is run with a `send` that writes into an
aiohttp StreamResponse, so nothing is buffered whole.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from aiohttp import web
from multidict import CIMultiDict

from .conversion import BodyTooLarge


def asgi_scope(request: web.Request, route_values: dict[str, str]) -> dict[str, Any]:
    """ASGI 2.4 (spec_version): the server reports a gone client by failing `send`, so a response need not
    also watch `receive` for `http.disconnect`."""
    peer = request.transport.get_extra_info("peername") if request.transport else None
    sock = request.transport.get_extra_info("sockname") if request.transport else None
    # ASGI wants the path and query as sent (percent-encoded); aiohttp's `query_string` is decoded.
    path, _, query = request.raw_path.partition("?")
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": f"{request.version.major}.{request.version.minor}",
        "method": request.method,
        "scheme": request.scheme,
        "path": request.path,
        "raw_path": path.encode("utf-8", "surrogateescape"),
        "query_string": query.encode("utf-8", "surrogateescape"),
        "root_path": "",
        "headers": [(k.lower(), v) for k, v in request.raw_headers],
        "client": tuple(peer[:2]) if peer else None,
        "server": tuple(sock[:2]) if sock else None,
        "path_params": dict(route_values),  # what the worker's RequestSynchronizer sets
        "state": {},
    }


def body_receiver(request: web.Request, limit: int) -> Any:
    """ASGI `receive` over the aiohttp body stream. After the body it waits: the connection's end is
    reported by `send` failing (spec 2.4), never by a premature `http.disconnect`."""
    done = False
    size = 0

    async def receive() -> dict[str, Any]:
        nonlocal done, size
        if done:
            await asyncio.Event().wait()  # cancelled when the response is finished
        chunk = await request.content.readany()
        size += len(chunk)
        if size > limit:  # FUNCTIONS_REQUEST_BODY_SIZE_LIMIT, while the function reads
            raise BodyTooLarge(limit)
        done = request.content.at_eof()
        return {"type": "http.request", "body": chunk, "more_body": not done}

    return receive


def whole_response(response: Any) -> web.Response | None:
    """A plain Starlette `Response` (not a stream, a file or one with background work) as an aiohttp
    response, skipping the ASGI round: same status, headers and body, about a tenth of the CPU."""
    from starlette.responses import Response

    if type(response).__call__ is not Response.__call__ or response.background is not None:
        return None
    headers = CIMultiDict((k.decode("latin-1"), v.decode("latin-1")) for k, v in response.raw_headers)
    headers.popall("Content-Length", None)  # aiohttp sets it from the body
    return web.Response(status=response.status_code, body=response.body, headers=headers)


class ResponseWriter:
    """ASGI `send` into an aiohttp StreamResponse, created when the status line comes. `before_headers`
    (stream) adds host headers (CORS) just before they are sent. `stream` stays None until then, so a
    failure before it can still be answered with a 500."""

    def __init__(self, request: web.Request, before_headers: Callable[[web.StreamResponse], None]) -> None:
        self.request = request
        self.before_headers = before_headers
        self.stream: web.StreamResponse | None = None
        self.head = request.method == "HEAD"

    async def send(self, message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            stream = web.StreamResponse(status=message["status"])
            for name, value in message.get("headers", []):
                stream.headers.add(name.decode("latin-1"), value.decode("latin-1"))
            self.before_headers(stream)
            await stream.prepare(self.request)
            self.stream = stream
        elif message["type"] == "http.response.body":
            if self.stream is None:
                raise RuntimeError("http.response.body before http.response.start")
            body = message.get("body", b"")
            if body and not self.head:
                await self.stream.write(body)
            if not message.get("more_body", False):
                await self.stream.write_eof()
