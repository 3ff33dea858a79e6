"""The host's HTTP front door: route table, HTTP-triggered invocations, the invocation log line.

Protocol only: routing is `routing.Router`, the call itself is `invoker.Invoker`. A handler error
becomes a 500 whose JSON body names the function and invocation id but carries no trace; the full
trace goes to the log, as in Azure.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Iterable

from aiohttp import web

from . import conversion, http_streams, log_levels
from .expressions import BindingExpressionError
from .invoker import InvocationError, InvocationResult, Invoker
from .loader import FunctionDef, FunctionLoadError
from .routing import Route, Router, RouteTemplate, RouteTemplateError
from .settings import HostSettings

log = logging.getLogger("emulators.functions")

ALL_METHODS = None  # an httpTrigger without `methods` accepts every method

HOMEPAGE = (b"<!doctype html><title>Your Functions 4.0 app is up and running</title>"
            b"<h1>Your Functions 4.0 app is up and running</h1>")


RESERVED_ROUTES = ("admin", "runtime")  # ScriptHost.ValidateHttpFunction: a plain prefix test


def azure_order(functions: Iterable[FunctionDef]) -> list[FunctionDef]:
    """The host's order: by name, ordinal ignore case (FunctionMetadataManager's OrderBy)."""
    return sorted(functions, key=lambda fd: fd.name.upper())


def _route_of(fd: FunctionDef) -> str:
    route = fd.trigger.get("route")
    # An empty or blank route is the function's name, as in ScriptHost.ValidateHttpFunction.
    route = fd.name if route is None or not str(route).strip() else str(route)
    if route.strip("/").lower().startswith(RESERVED_ROUTES):
        raise FunctionLoadError(f"function {fd.name!r}: route {route!r}: The specified route conflicts with "
                                "one or more built in routes.")
    return route


def _conflict(a: tuple[str, frozenset[str] | None], b: tuple[str, frozenset[str] | None]) -> bool:
    """ScriptHost.HttpRoutesConflict: the same route (ignore case) and methods that intersect."""
    if a[0].strip("/").lower() != b[0].strip("/").lower():
        return False
    return a[1] is None or b[1] is None or bool(a[1] & b[1])


def build_router(functions: Iterable[FunctionDef], route_prefix: str) -> Router:
    """The route table as Azure's host builds it: functions in name order, first match wins.

    A route that an earlier one always takes is logged at start-up: Azure would never call it."""
    router = Router()
    declared: dict[str, tuple[str, frozenset[str] | None]] = {}
    for fd in azure_order(f for f in functions if f.trigger.type == "httpTrigger"):
        route = _route_of(fd)
        methods = fd.trigger.get("methods")
        allowed = frozenset(str(m).upper() for m in methods) if methods else ALL_METHODS
        for other, seen in declared.items():
            if _conflict((route, allowed), seen):
                raise FunctionLoadError(f"function {fd.name!r}: The route specified conflicts with the route "
                                        f"defined by function '{other}'.")
        declared[fd.name] = (route, allowed)
        full = "/".join(p for p in (route_prefix.strip("/"), route.strip("/")) if p)
        try:
            template = RouteTemplate.parse(full)
        except RouteTemplateError as e:
            raise FunctionLoadError(f"function {fd.name!r}: route {route!r}: {e}") from None
        entry = Route(template=template, methods=allowed, target=fd)
        router.add(entry)
        for method, earlier in router.shadowing(entry):
            log.warning("function %s: %s /%s is answered by function %s, which comes first in the host's "
                        "route order (by function name): %s is never called for it", fd.name, method,
                        template.sample_path(), earlier.target.name, fd.name)  # type: ignore[attr-defined]
    return router


def _limit(value: object) -> int | None:
    try:
        n = int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return None
    return n if n > 0 else None


def _is_host_path(raw_path: str) -> bool:
    """The host's own endpoints, served by its controllers before function routing: `/admin/...`
    (`IsAdminRequest`: StartsWithSegments, ignore case) and `/runtime/webhooks/{extension}/...`."""
    segments = [s.lower() for s in raw_path.split("/") if s]
    return segments[:1] == ["admin"] or segments[:2] == ["runtime", "webhooks"]


def error_response(status: int, code: str, message: str, **extra: str) -> web.Response:
    body = {"error": {"code": code, "message": message, **extra}}
    return web.Response(status=status, body=json.dumps(body).encode(), content_type="application/json")


class HttpFrontDoor:
    def __init__(self, settings: HostSettings, functions: list[FunctionDef], invoker: Invoker) -> None:
        self.settings = settings
        self.invoker = invoker
        self.router = build_router(functions, settings.route_prefix)
        self.body_limit = settings.request_body_limit  # FUNCTIONS_REQUEST_BODY_SIZE_LIMIT
        self.cors_origins = settings.cors_origins
        self.cors_credentials = settings.cors_credentials
        # host.json extensions.http throttles (unset or -1 = unbounded, as outside Consumption plans).
        concurrent = _limit(settings.extension("http", "maxConcurrentRequests"))
        self.outstanding_limit = _limit(settings.extension("http", "maxOutstandingRequests"))
        self.running = asyncio.Semaphore(concurrent) if concurrent else None
        self.outstanding = 0

    def make_app(self) -> web.Application:
        app = web.Application(client_max_size=self.body_limit)
        # Every path, including ones whose decoded form holds a newline (%0A): `.` would not match it, and
        # aiohttp would answer 404 itself where the route table (and Kestrel) reach the function.
        app.router.add_route("*", r"/{tail:[\s\S]*}", self.handle)
        return app

    def _cors(self, request: web.Request, response: web.StreamResponse) -> None:
        origin = request.headers.get("Origin")
        if not origin or not self.cors_origins:
            return
        if "*" in self.cors_origins and not self.cors_credentials:
            response.headers["Access-Control-Allow-Origin"] = "*"
        elif origin in self.cors_origins or "*" in self.cors_origins:
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers["Vary"] = "Origin"
            if self.cors_credentials:
                response.headers["Access-Control-Allow-Credentials"] = "true"

    async def handle(self, request: web.Request) -> web.StreamResponse:
        if (request.method == "OPTIONS" and self.cors_origins and "Origin" in request.headers
                and "Access-Control-Request-Method" in request.headers):
            resp = web.Response(status=204)
            self._cors(request, resp)
            resp.headers["Access-Control-Allow-Methods"] = request.headers["Access-Control-Request-Method"]
            if "Access-Control-Request-Headers" in request.headers:
                requested = request.headers["Access-Control-Request-Headers"]
                resp.headers["Access-Control-Allow-Headers"] = requested
            return resp
        if self.outstanding_limit and self.outstanding >= self.outstanding_limit:
            # What the host answers when maxOutstandingRequests is reached.
            resp: web.StreamResponse = web.Response(status=429)
        else:
            self.outstanding += 1
            try:
                if self.running is not None:
                    async with self.running:
                        resp = await self._dispatch(request)
                else:
                    resp = await self._dispatch(request)
            finally:
                self.outstanding -= 1
        if not resp.prepared:  # a streamed response got its CORS headers before they were sent
            self._cors(request, resp)
        return resp

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        started = time.perf_counter()
        raw_path = request.raw_path.split("?", 1)[0]
        if _is_host_path(raw_path):
            log.info("%s %s → 404 (the host's own API, not emulated; never a function's)", request.method,
                     request.path)
            return error_response(404, "NotFound", "the Functions host's admin API is not emulated")
        found = self.router.match(request.method, raw_path)
        if found is None:
            if raw_path == "/":  # HomepageMiddleware: only when no function ran
                if self.settings.homepage_disabled:
                    return web.Response(status=204)
                return web.Response(body=HOMEPAGE, content_type="text/html")
            log.info("%s %s → 404 (no function matches)", request.method, request.path)
            return web.Response(status=404)
        route, values = found
        fd: FunctionDef = route.target  # type: ignore[assignment]
        token = log_levels.CURRENT_FUNCTION.set(fd.name)  # host.json logLevel: lines of this function
        try:
            return await self._invoke(request, fd, values, started)
        finally:
            log_levels.CURRENT_FUNCTION.reset(token)

    async def _invoke(self, request: web.Request, fd: FunctionDef, values: dict[str, str],
                      started: float) -> web.StreamResponse:
        trigger = f"http {request.method} {request.path}"
        if fd.http_streams:
            return await self._dispatch_stream(request, fd, values, trigger, started)
        try:
            body = await conversion.read_body(request, self.body_limit)
        except conversion.BodyTooLarge as e:
            return self._body_too_large(fd, trigger, started, e)
        datum = conversion.request_datum(request, values, body)
        data = conversion.request_binding_data(datum)
        try:
            result = await self.invoker.invoke(fd, datum, data)
            if fd.return_binding is not None and fd.return_binding.type == "http":
                out = result.return_datum
            else:
                out = next(iter(result.http_outputs.values()), None)
            response = conversion.response_from_datum(out)
        except InvocationError as e:
            return self._failed(fd, trigger, started, e)
        ms = (time.perf_counter() - started) * 1000
        log.info("%s %s → %d in %.1f ms (Succeeded, id=%s)", fd.name, trigger, response.status, ms,
                 result.invocation_id)
        return response

    def _body_too_large(self, fd: FunctionDef, trigger: str, started: float,
                        e: conversion.BodyTooLarge) -> web.Response:
        """Kestrel refuses the body while the host binds `req`, and ExceptionMiddleware answers 500
        (Azure/azure-functions-host#10519); the function never runs. What the client still sends is drained
        and dropped (aiohttp's lingering close, bounded in time), never held: closing at once would reset the
        connection and could destroy the 500 before the client reads it."""
        ms = (time.perf_counter() - started) * 1000
        message = (f"Exception binding parameter '{fd.trigger.name}'. {e} "
                   "(app setting FUNCTIONS_REQUEST_BODY_SIZE_LIMIT)")
        log.error("%s %s → 500 in %.1f ms (Failed: %s)", fd.name, trigger, ms, message)
        return error_response(500, "RequestBodyTooLarge", message, function=fd.name)

    def _failed(self, fd: FunctionDef, trigger: str, started: float, e: InvocationError) -> web.Response:
        ms = (time.perf_counter() - started) * 1000
        log.error("%s %s → 500 in %.1f ms (Failed: %s)\n%s", fd.name, trigger, ms, e,
                  e.trace)
        message = (str(e.cause) if isinstance(e.cause, BindingExpressionError)
                   else "The function failed; the host log has the details.")
        return error_response(500, "FunctionInvocationFailed", message, function=fd.name)

    async def _dispatch_stream(self, request: web.Request, fd: FunctionDef, values: dict[str, str],
                               trigger: str, started: float) -> web.StreamResponse:
        """HTTP streams (http_streams.py): the body is read by the function as it arrives, and the
        response is written as the function's Response produces it; the log line comes at its end."""
        length = request.content_length
        if length is not None and length > self.body_limit:
            return self._body_too_large(fd, trigger, started, conversion.BodyTooLarge(self.body_limit))
        # Binding expressions see route values, query and headers; the body is the function's to read.
        data = conversion.request_binding_data(conversion.request_head_datum(request, values))
        scope = http_streams.asgi_scope(request, values)
        receive = http_streams.body_receiver(request, self.body_limit)
        from starlette.requests import Request

        try:
            result = await self.invoker.invoke(fd, conversion.Datum(type="http", value=None), data,
                                               stream_request=Request(scope, receive))
        except InvocationError as e:
            return self._failed(fd, trigger, started, e)
        response = result.stream_response
        if not callable(response) or not hasattr(response, "status_code"):
            return self._failed(fd, trigger, started, InvocationError("return value", TypeError(
                f"an HTTP streams function must return a FastAPI Response, not {type(response).__name__}")))
        whole = http_streams.whole_response(response)
        if whole is not None:  # a body already in memory: one write, as the worker's web server does it
            self._cors(request, whole)
            await whole.prepare(request)
            await whole.write_eof()
            await self._outputs_after_response(fd, trigger, whole.status, result)
            ms = (time.perf_counter() - started) * 1000
            log.info("%s %s → %d in %.1f ms (Succeeded, id=%s)", fd.name, trigger, whole.status, ms,
                     result.invocation_id)
            return whole
        writer = http_streams.ResponseWriter(request, lambda stream: self._cors(request, stream))
        try:
            await response(scope, receive, writer.send)
            if writer.stream is None:
                raise RuntimeError("the response sent no status line")
        except Exception as e:
            if writer.stream is None:  # nothing sent yet: still an ordinary failure
                return self._failed(fd, trigger, started, InvocationError("response", e))
            # The status is out: all that is left is to cut the body short. Closing the connection before
            # the terminating chunk is how the client learns the body is incomplete.
            ms = (time.perf_counter() - started) * 1000
            log.warning("%s %s → %d in %.1f ms (Succeeded, id=%s; body cut short: %s: %s)", fd.name, trigger,
                        writer.stream.status, ms, result.invocation_id, type(e).__name__, e)
            if request.transport is not None:
                request.transport.close()
            return writer.stream
        stream = writer.stream
        await self._outputs_after_response(fd, trigger, stream.status, result)
        ms = (time.perf_counter() - started) * 1000
        log.info("%s %s → %d in %.1f ms (Succeeded, id=%s)", fd.name, trigger, stream.status, ms,
                 result.invocation_id)
        return stream

    async def _outputs_after_response(self, fd: FunctionDef, trigger: str, status: int,
                                      result: InvocationResult) -> None:
        """Azure's order in HTTP streams mode: the response is out, then the outputs go to the host. A failed
        output can no longer change what the client got; it is only logged, as the host would."""
        if result.write_outputs is None:
            return
        try:
            await result.write_outputs()
        except InvocationError as e:
            log.error("%s %s: %s after the response (%d) was sent: the client was told it succeeded\n%s",
                      fd.name, trigger, e, status, e.trace)
