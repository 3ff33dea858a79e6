"""The data-plane REST API, in its v1 (``/api/v1/hubs/{hub}``) and 2022-06-01 (``/api/hubs/{hub}``) forms.

This module parses the hub prefix, the api-version and the token on the raw path (names may contain
escaped slashes, ``%2F``, and the ``:send`` / ``:closeConnections`` suffixes are path segments); the
operations under a hub are declared in ``urls.py`` and implemented below, one function per
row. Status codes follow each family's swagger.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from aiohttp import web

from . import auth, urls
from .client import HUB_NAME, KEY_KEY, STATE_KEY
from .hub import Connection, Hub, ServiceState
from .protocol import invocation
from .requestlog import note

MAX_BODY = 1024 * 1024
API_VERSION = "2022-06-01"
SUPPORTED_API_VERSIONS = {"2021-08-01", "2022-06-01", "2022-11-01", "2023-07-01", "2024-01-01", "2024-12-01"}
_ACTION = re.compile(r"^:[A-Za-z]+$")


class RestError(Exception):
    """`error_code` is the service's `x-ms-error-code` header, by which the Management SDK tells an expected
    404 (e.g. adding a connection that is gone, `Error.Connection.NotExisted`) from a wrong endpoint."""

    def __init__(
        self, status: int, code: str, message: str, target: str | None = None, error_code: str | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.target = status, code, message, target
        self.error_code = error_code


CONNECTION_GONE_ERROR = "Error.Connection.NotExisted"  # adding a connection that is not there
CONNECTION_GONE = "Warning.Connection.NotExisted"  # closing / asking about one


@dataclass
class Call:
    """One parsed REST request."""

    request: web.Request
    v1: bool
    hub: Hub
    rest: list[str]  # path segments after the hub, with any :action suffix removed
    action: str | None  # "send" or "closeConnections"

    def status(self, v1: int, v2022: int) -> int:
        return v1 if self.v1 else v2022


def _error(
    status: int, code: str, message: str, target: str | None = None, error_code: str | None = None
) -> web.Response:
    body = {"code": code, "message": message, "target": target, "details": [], "inner": None}
    headers = {"x-ms-error-code": error_code} if error_code else None
    return web.json_response(body, status=status, headers=headers)


def _segments(request: web.Request) -> list[str]:
    raw = request.rel_url.raw_path.strip("/")
    return [unquote(part) for part in raw.split("/")] if raw else []


async def handle(request: web.Request) -> web.StreamResponse:
    try:
        return await _handle(request)
    except RestError as exc:
        if exc.status >= 400:
            note(request, exc.message)
        return _error(exc.status, exc.code, exc.message, exc.target, exc.error_code)


async def _handle(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE_KEY]
    segments = _segments(request)
    lowered = [s.lower() for s in segments[:3]]
    if lowered in (["api", "v1", "health"], ["api", "health"]) and len(segments) == len(lowered):
        if request.method not in ("GET", "HEAD"):
            raise RestError(405, "MethodNotAllowed", "Health takes HEAD or GET.")
        return web.Response(status=200)
    if lowered[:3] == ["api", "v1", "hubs"] and len(segments) >= 4:
        v1, hub_name, rest = True, segments[3], segments[4:]
    elif lowered[:2] == ["api", "hubs"] and len(segments) >= 3:
        v1, hub_name, rest = False, segments[2], segments[3:]
    else:
        raise RestError(404, "NotFound", f"No REST API at {request.path}.")
    if not HUB_NAME.match(hub_name):
        raise RestError(
            400,
            "InvalidHubName",
            "Hub name must start with a letter and use only letters, "
            "digits and _`,.[] (at most 128 characters).",
            "hub",
        )
    if not v1:
        version = request.query.get("api-version")
        if not version:
            raise RestError(
                400,
                "MissingApiVersion",
                f"Query parameter 'api-version' is required (e.g. api-version={API_VERSION}).",
                "api-version",
            )
        if version not in SUPPORTED_API_VERSIONS:
            raise RestError(
                400,
                "UnsupportedApiVersion",
                f"api-version '{version}' is not supported; use {API_VERSION}.",
                "api-version",
            )
    _authorize(request, state)
    action = None
    if rest and _ACTION.match(rest[-1]):
        action, rest = rest[-1][1:], rest[:-1]
    if rest and rest[-1] == "":
        rest = rest[:-1]
    application = request.query.get("application")
    if application:  # the service prefixes hubs of an application: clients connect to hub "{app}_{hub}"
        if not HUB_NAME.match(application):
            raise RestError(
                400,
                "InvalidApplicationName",
                "Application name must start with a letter and use only letters, digits and _.",
                "application",
            )
        hub_name = f"{application}_{hub_name}"
    call = Call(request, v1, state.hub(hub_name), rest, action)
    try:
        return await _route(call, state)
    finally:
        state.forget_if_empty(call.hub)


def _authorize(request: web.Request, state: ServiceState) -> None:
    token = auth.bearer_token(request.headers, request.query, allow_query=False)
    host = request.url.host or request.host.split(":")[0]
    target = auth.RequestTarget(request.scheme, host, request.url.port, request.rel_url.raw_path)
    try:
        auth.verify_rest_token(token, request.app[KEY_KEY], target, leeway=state.limits.token_leeway)
    except auth.AuthError as exc:
        state.stats.auth_failures += 1
        raise RestError(401, "Unauthorized", str(exc)) from None


async def _message(request: web.Request) -> dict[str, Any]:
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise RestError(413, "PayloadTooLarge", f"The request body is over the {MAX_BODY}-byte limit.")
    try:
        body = await request.read()  # the app's client_max_size is MAX_BODY
    except web.HTTPRequestEntityTooLarge:
        raise RestError(
            413, "PayloadTooLarge", f"The request body is over the {MAX_BODY}-byte limit."
        ) from None
    try:
        payload = json.loads(body, parse_constant=_no_constants)
    except (ValueError, UnicodeDecodeError):
        raise RestError(
            400,
            "InvalidBody",
            'The body must be a JSON object like {"target": "newMessage", "arguments": [...]}.',
            "message",
        ) from None
    if not isinstance(payload, dict):
        raise RestError(400, "InvalidBody", "The body must be a JSON object.", "message")
    target = payload.get("target", payload.get("Target"))
    arguments = payload.get("arguments", payload.get("Arguments", []))
    if not isinstance(target, str) or not target:
        raise RestError(
            400,
            "InvalidTarget",
            "Field 'target' is required: a non-empty string naming the client method.",
            "target",
        )
    if arguments is None:
        arguments = []
    if not isinstance(arguments, list):
        raise RestError(400, "InvalidArguments", "Field 'arguments' must be an array.", "arguments")
    return invocation(target, arguments)


def _no_constants(name: str) -> Any:
    """NaN and Infinity are not JSON: clients could not parse a message carrying them."""
    raise ValueError(f"{name} is not valid JSON")


def _group(name: str) -> str:
    if not 0 < len(name) <= 1024:
        raise RestError(400, "InvalidGroupName", "Group name must be 1 to 1024 characters long.", "group")
    return name


def _excluded(request: web.Request) -> set[str]:
    return set(request.query.getall("excluded", []))


def _connection(call: Call, conn_id: str, error_code: str = CONNECTION_GONE) -> Connection:
    conn = call.hub.connections.get(conn_id)
    if conn is None or not conn.online:
        raise RestError(
            404,
            "NotFound",
            f"Connection '{conn_id}' does not exist in hub '{call.hub.name}'.",
            "connectionId",
            error_code,
        )
    return conn


def _ttl(request: web.Request) -> float | None:
    raw = request.query.get("ttl")
    if raw is None:
        return None
    try:
        ttl = int(raw)
    except ValueError:
        raise RestError(
            400, "InvalidTtl", "Query parameter 'ttl' must be a whole number of seconds.", "ttl"
        ) from None
    if ttl < 0:
        raise RestError(400, "InvalidTtl", "Query parameter 'ttl' must not be negative.", "ttl")
    return float(ttl)


def _exists(found: bool, error_code: str | None = None) -> web.Response:
    """HEAD/GET existence checks; a 404 names what is missing as the service does (the codes the
    Management SDK expects)."""
    if found:
        return web.Response(status=200)
    return web.Response(status=404, headers={"x-ms-error-code": error_code} if error_code else None)


async def _send(call: Call, state: ServiceState, targets: Any) -> web.Response:
    message = await _message(call.request)
    state.stats.messages_in += 1
    state.deliver(targets, message)
    return web.Response(status=202)


def _close_all(call: Call, state: ServiceState, conns: list[Connection]) -> web.Response:
    reason = call.request.query.get("reason")
    excluded = _excluded(call.request)
    for conn in conns:
        if conn.id not in excluded:
            state.close(conn, reason, allow_reconnect=True)
    return web.Response(status=204)


async def _route(call: Call, state: ServiceState) -> web.StreamResponse:
    found = urls.match(call.request.method, call.rest, call.action)
    if found is None:
        message = urls.wrong_method(call.rest)
        if message:
            raise RestError(405, "MethodNotAllowed", message)
        method = call.request.method
        raise RestError(
            404 if method in ("GET", "HEAD", "POST", "PUT", "DELETE") else 405,
            "NotFound",
            f"No REST operation {method} {call.request.path}.",
        )
    name, captures = found
    return await OPERATIONS[name](call, state, **captures)


# -- the operations of urls.ROUTES, one per row --------------------------------------------------------


async def close_hub(call: Call, state: ServiceState) -> web.Response:
    return _close_all(call, state, list(call.hub.connections.values()))


async def broadcast(call: Call, state: ServiceState) -> web.Response:
    excluded = _excluded(call.request)
    conns = call.hub.connections.values()
    return await _send(call, state, [c for c in conns if c.id not in excluded] if excluded else conns)


async def close_user(call: Call, state: ServiceState, user: str) -> web.Response:
    return _close_all(call, state, list(call.hub.users.get(user, ())))


async def send_to_user(call: Call, state: ServiceState, user: str) -> web.Response:
    return await _send(call, state, list(call.hub.users.get(user, ())))


async def user_exists(call: Call, _state: ServiceState, user: str) -> web.Response:
    return _exists(bool(call.hub.users.get(user)), "Warning.User.NotExisted")


async def remove_user_from_all_groups(call: Call, _state: ServiceState, user: str) -> web.Response:
    call.hub.remove_user_from_all_groups(user)
    return web.Response(status=call.status(202, 204))


async def add_user_to_group(call: Call, _state: ServiceState, user: str, group: str) -> web.Response:
    call.hub.add_user_to_group(user, _group(group), _ttl(call.request))
    return web.Response(status=call.status(202, 200))


async def remove_user_from_group(call: Call, _state: ServiceState, user: str, group: str) -> web.Response:
    call.hub.remove_user_from_group(user, _group(group))
    return web.Response(status=call.status(202, 204))


async def user_in_group(call: Call, _state: ServiceState, user: str, group: str) -> web.Response:
    return _exists(call.hub.user_in_group(user, _group(group)), "Info.User.NotInGroup")


async def close_group(call: Call, state: ServiceState, group: str) -> web.Response:
    return _close_all(call, state, list(call.hub.group_members(_group(group))))


async def send_to_group(call: Call, state: ServiceState, group: str) -> web.Response:
    excluded = _excluded(call.request)
    members = call.hub.group_members(_group(group))
    return await _send(
        call, state, [c for c in members if c.id not in excluded] if excluded else list(members)
    )


async def group_exists(call: Call, _state: ServiceState, group: str) -> web.Response:
    return _exists(bool(call.hub.group_members(_group(group))), "Warning.Group.NotExisted")


async def add_connection_to_group(
    call: Call, _state: ServiceState, connection: str, group: str
) -> web.Response:
    group = _group(group)
    call.hub.add_to_group(_connection(call, connection, CONNECTION_GONE_ERROR), group)
    return web.Response(status=200)


async def remove_connection_from_group(
    call: Call, _state: ServiceState, connection: str, group: str
) -> web.Response:
    group = _group(group)
    call.hub.remove_from_group(_connection(call, connection), group)
    return web.Response(status=200)


async def connection_in_group(call: Call, _state: ServiceState, connection: str, group: str) -> web.Response:
    group = _group(group)
    return _exists(group in _connection(call, connection).groups)


async def send_to_connection(call: Call, state: ServiceState, connection: str) -> web.Response:
    conn = call.hub.connections.get(connection)
    return await _send(call, state, [conn] if conn is not None else [])


async def connection_exists(call: Call, _state: ServiceState, connection: str) -> web.Response:
    conn = call.hub.connections.get(connection)
    return _exists(conn is not None and conn.online, CONNECTION_GONE)


async def close_connection(call: Call, state: ServiceState, connection: str) -> web.Response:
    state.close(_connection(call, connection), call.request.query.get("reason"), allow_reconnect=True)
    return web.Response(status=call.status(202, 200))


async def remove_connection_from_all_groups(
    call: Call, _state: ServiceState, connection: str
) -> web.Response:
    call.hub.remove_from_all_groups(_connection(call, connection))
    return web.Response(status=200)


OPERATIONS = {route.handler: globals()[route.handler] for route in urls.ROUTES}
