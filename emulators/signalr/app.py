"""The aiohttp application: client endpoint, REST API, ``/stats``, and CORS the way the service does it."""

from __future__ import annotations

from aiohttp import web
from aiohttp.typedefs import Handler

from . import client, rest
from .hub import ServiceState
from .requestlog import request_log

CORS_ALLOWED_HEADERS = "X-Requested-With, X-SignalR-User-Agent, Authorization, Content-Type"


@web.middleware
async def preflight(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Answer CORS preflights for any path; the origin is reflected in ``_cors_headers``."""
    if request.method == "OPTIONS" and "Origin" in request.headers:
        return web.Response(status=204, headers={
            "Access-Control-Allow-Methods": request.headers.get("Access-Control-Request-Method",
                                                                "GET, POST, PUT, DELETE, HEAD, OPTIONS"),
            "Access-Control-Allow-Headers": request.headers.get("Access-Control-Request-Headers",
                                                                CORS_ALLOWED_HEADERS),
            "Access-Control-Max-Age": "600",
        })
    return await handler(request)


async def _cors_headers(request: web.Request, response: web.StreamResponse) -> None:
    """The JS client negotiates with credentials, so ``*`` fails: reflect the origin, allow credentials."""
    origin = request.headers.get("Origin")
    if origin:
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Access-Control-Allow-Credentials"] = "true"
        response.headers.add("Vary", "Origin")


async def stats(request: web.Request) -> web.Response:
    return web.json_response(request.app[client.STATE_KEY].snapshot())


async def _start_state(app: web.Application) -> None:
    app[client.STATE_KEY].start()


async def _stop_state(app: web.Application) -> None:
    await app[client.STATE_KEY].stop()


def create_app(state: ServiceState, key: str) -> web.Application:
    app = web.Application(middlewares=[request_log, preflight], client_max_size=rest.MAX_BODY)
    app[client.STATE_KEY] = state
    app[client.KEY_KEY] = key
    app.on_response_prepare.append(_cors_headers)
    app.on_startup.append(_start_state)
    app.on_shutdown.append(_stop_state)
    for path in ("/client/negotiate", "/client/negotiate/"):
        app.router.add_post(path, client.negotiate)
        app.router.add_route("*", path, client.negotiate_wrong_method)
    for path in ("/client", "/client/"):
        app.router.add_get(path, client.connect, allow_head=False)
        app.router.add_post(path, client.send)
        app.router.add_delete(path, client.delete)
    app.router.add_get("/stats", stats)
    app.router.add_route("*", "/api/{tail:.*}", rest.handle)
    return app
