"""The client endpoint (``/client/?hub=...``): negotiate, the three transports, and the hub handshake.

Status codes and texts follow ASP.NET Core's HttpConnectionDispatcher, which is what the official
clients are written against; the hub rules (listen-only serverless clients) follow Azure SignalR Service.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable
from typing import Any

from aiohttp import WSMsgType, web

from . import auth
from .hub import LONG_POLLING, SSE, WEBSOCKETS, Connection, ServiceState
from .protocol import (
    CANCEL_INVOCATION,
    CLOSE,
    COMPLETION,
    INVOCATION,
    STREAM_INVOCATION,
    ProtocolError,
    handshake_response,
    parse_handshake,
    split_handshake,
)
from .requestlog import note
from .sinks import QueueSink, WebSocketSink

HUB_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_`,.\[\]]{0,127}$")
STATE_KEY: web.AppKey[ServiceState] = web.AppKey("signalr_state", ServiceState)
KEY_KEY: web.AppKey[str] = web.AppKey("signalr_key", str)

AVAILABLE_TRANSPORTS = [
    {"transport": WEBSOCKETS, "transferFormats": ["Text", "Binary"]},
    {"transport": SSE, "transferFormats": ["Text"]},
    {"transport": LONG_POLLING, "transferFormats": ["Text", "Binary"]},
]
NO_UPSTREAM = ("Method '{}' cannot be invoked: the service runs in serverless mode and this emulator "
               "has no upstream configured, so client invocations have nowhere to go.")


def _text(status: int, message: str) -> web.Response:
    return web.Response(status=status, text=message)


def _unauthorized(message: str) -> web.Response:
    return web.json_response({"error": message}, status=401,
                             headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})


def _target(request: web.Request) -> auth.RequestTarget:
    host = request.url.host or request.host.split(":")[0]
    return auth.RequestTarget(request.scheme, host, request.url.port, request.path)


def _hub_name(request: web.Request) -> str | web.Response:
    hub = request.query.get("hub")
    if not hub:
        return web.json_response({"error": "Query parameter 'hub' is required (e.g. /client/?hub=chat)."},
                                 status=400)
    if not HUB_NAME.match(hub):
        return web.json_response(
            {"error": "Query parameter 'hub' must start with a letter and use only letters, digits "
                      "and _`,.[] (at most 128 characters)."}, status=400)
    return hub


def _authenticate(request: web.Request, hub: str, query_token_ok: bool) -> dict[str, Any] | web.Response:
    state = request.app[STATE_KEY]
    token = auth.bearer_token(request.headers, request.query, allow_query=query_token_ok)
    if token is not None and len(token) > auth.MAX_TOKEN_LENGTH:
        note(request, f"hub={hub} refused: a {len(token)}-character access token")
        return web.json_response({"error": "Access Token must not be longer than 4K."}, status=413)
    try:
        return auth.verify_client_token(token, request.app[KEY_KEY], _target(request), hub,
                                        leeway=state.limits.token_leeway)
    except auth.AuthError as exc:
        state.stats.auth_failures += 1
        note(request, f"hub={hub} refused: {exc}")
        return _unauthorized(str(exc))


async def negotiate(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE_KEY]
    hub = _hub_name(request)
    if isinstance(hub, web.Response):
        return hub
    claims = _authenticate(request, hub, query_token_ok=False)
    if isinstance(claims, web.Response):
        return claims
    raw_version = next((v for k, v in request.query.items() if k.lower() == "negotiateversion"), None)
    if raw_version is None:
        version = 0
    else:
        try:
            version = min(int(raw_version), 1)
        except ValueError:
            return web.json_response({"error": "The client requested a non-integer protocol version."})
    conn = state.create(hub, auth.user_id(claims), version, auth.auth_expires_on(claims))
    body: dict[str, Any] = {"connectionId": conn.id, "negotiateVersion": version,
                            "availableTransports": AVAILABLE_TRANSPORTS}
    if version >= 1:
        body = {"connectionToken": conn.token, **body}
    note(request, f"hub={conn.hub} user={conn.user_id} v{version} -> connection {conn.id}")
    return web.json_response(body)


async def negotiate_wrong_method(request: web.Request) -> web.StreamResponse:
    return _text(405, "Method Not Allowed: negotiate takes POST.")


def _lookup(request: web.Request, hub: str) -> Connection | web.Response:
    conn_id = request.query.get("id")
    if not conn_id:
        return _text(400, "Connection ID required")
    conn = request.app[STATE_KEY].find(conn_id)
    if conn is None or conn.hub != hub.lower():
        return _text(404, "No Connection with that ID")
    return conn


def _authorize_existing(request: web.Request, hub: str, conn: Connection,
                        query_token_ok: bool) -> web.Response | None:
    """A request on an existing connection: a token, if sent, must be valid and the connection's user's.

    Without one, the unguessable connection token (obtained with a verified token at negotiate)
    authenticates the request if it is the ``id``: signalrcore's long polls carry no Authorization
    header. A v1 connection addressed by its public connection id needs a token.
    """
    if auth.bearer_token(request.headers, request.query, allow_query=query_token_ok) is None:
        if request.query.get("id") == conn.token:
            return None
        # addressed by its public connection id (v1): only a token proves who is asking
        request.app[STATE_KEY].stats.auth_failures += 1
        return _unauthorized("Missing access token: this connection is addressed by its public id.")
    claims = _authenticate(request, hub, query_token_ok)
    if isinstance(claims, web.Response):
        return claims
    if conn.user_id is not None and auth.user_id(claims) != conn.user_id:
        return _unauthorized("The access token belongs to a different user than this connection.")
    return None


def _existing(request: web.Request, hub: str, query_token_ok: bool) -> Connection | web.Response:
    """The connection a transport request names by ``id=``, if this request may use it."""
    conn = _lookup(request, hub)
    if isinstance(conn, web.Response):
        return conn
    note(request, f"connection {conn.id}")
    refused = _authorize_existing(request, hub, conn, query_token_ok)
    return conn if refused is None else refused


def _posted_to(request: web.Request) -> Connection | web.Response:
    """The connection of a POST or DELETE (never a WebSocket or SSE request: no query token)."""
    hub = _hub_name(request)
    return hub if isinstance(hub, web.Response) else _existing(request, hub, query_token_ok=False)


# -- incoming hub messages (all transports) ---------------------------------------------------


def receive(state: ServiceState, conn: Connection, data: bytes, binary_transport: bool,
            report: Callable[[str], None]) -> None:
    """Handle bytes from a client: handshake first, then hub messages. Errors close this connection only.

    ``report`` takes what is worth a person's attention (handshake, why it closed) for the log line.
    """
    if conn.closed:
        return
    conn.last_received = time.monotonic()
    limit = state.limits.max_message_size
    if len(data) > limit:
        _close_oversized(state, conn, report)
        return
    if conn.codec is None:
        parts = split_handshake(data)
        if parts is None:
            _reject_handshake(state, conn, "Handshake request is incomplete: no 0x1E record separator.",
                              report)
            return
        record, rest = parts
        try:
            handshake = parse_handshake(record, binary_transport)
        except ProtocolError as exc:
            _reject_handshake(state, conn, str(exc), report)
            return
        conn.codec = handshake.codec
        sink = conn.sink
        if isinstance(sink, WebSocketSink):
            sink.use_binary(handshake.codec.binary)
        assert sink is not None
        sink.push(sink.frame(handshake_response()))
        state.go_online(conn)
        report(f"online {conn.transport}/{handshake.codec.name} v{handshake.version}")
        data = rest
        if not data:
            return
    try:
        messages = conn.codec.decode(data)
    except ProtocolError as exc:
        state.stats.protocol_errors += 1
        report(f"closed: {exc}")
        state.close(conn, f"Connection closed with an error. {exc}")
        return
    for message in messages:
        _dispatch(state, conn, message, report)
        if conn.closed:
            return


def _close_oversized(state: ServiceState, conn: Connection, report: Callable[[str], None]) -> str:
    """Close a connection that sent a message over the limit; returns the reason given to the client."""
    reason = f"The message exceeds the maximum message size of {state.limits.max_message_size} bytes."
    state.stats.protocol_errors += 1
    report(f"closed: {reason}")
    state.close(conn, f"Connection closed with an error. {reason}")
    return reason


def _reject_handshake(state: ServiceState, conn: Connection, error: str,
                      report: Callable[[str], None]) -> None:
    state.stats.protocol_errors += 1
    report(f"handshake refused: {error}")
    sink = conn.sink
    state.discard(conn)
    if sink is not None:
        sink.finish(sink.frame(handshake_response(error)))


def _dispatch(state: ServiceState, conn: Connection, message: dict[str, Any],
              report: Callable[[str], None]) -> None:
    kind = message["type"]
    if kind in (INVOCATION, STREAM_INVOCATION):
        state.stats.messages_in += 1
        invocation_id = message.get("invocationId")
        if invocation_id is not None:
            state.send_to_connection(conn, {"type": COMPLETION, "invocationId": invocation_id,
                                            "error": NO_UPSTREAM.format(message.get("target"))})
    elif kind == CLOSE:
        report("closed by the client")
        sink = conn.sink
        state.discard(conn)
        if sink is not None and not isinstance(sink, WebSocketSink):
            sink.finish(None)
    elif kind in (COMPLETION, CANCEL_INVOCATION):
        state.stats.messages_in += 1
    # Ping (6), StreamItem (2), Ack (8), Sequence (9): nothing to do; last_received is already updated.


# -- transports -------------------------------------------------------------------------------


async def connect(request: web.Request) -> web.StreamResponse:
    """``GET /client/?hub=..&id=..``: WebSocket upgrade, SSE stream or long poll, chosen by the request."""
    state = request.app[STATE_KEY]
    hub = _hub_name(request)
    if isinstance(hub, web.Response):
        return hub
    is_ws = request.headers.get("Upgrade", "").lower() == "websocket"
    is_sse = "text/event-stream" in request.headers.get("Accept", "")
    conn: Connection | web.Response
    if is_ws and not request.query.get("id"):
        # No prior negotiate: the service accepts it (Python clients connect straight after a redirect).
        claims = _authenticate(request, hub, query_token_ok=True)
        if isinstance(claims, web.Response):
            return claims
        conn = state.create(hub, auth.user_id(claims), version=0,
                            auth_expires_on=auth.auth_expires_on(claims))
    else:
        conn = _existing(request, hub, query_token_ok=is_ws or is_sse)
        if isinstance(conn, web.Response):
            return conn
        if conn.closed:  # a closed long-polling connection still hands out its last Close message
            return await _drain_closed_poll(conn)
    wanted = WEBSOCKETS if is_ws else SSE if is_sse else LONG_POLLING
    if conn.transport is not None and conn.transport != wanted:
        return _text(400, "Cannot change transports mid-connection")
    if wanted == WEBSOCKETS:
        if conn.transport is not None:
            return _text(409, "Connection already has an active WebSocket")
        return await _websocket(request, state, conn)
    if wanted == SSE:
        if conn.transport is not None:
            return _text(409, "Connection already has an active Server-Sent Events stream")
        return await _sse(request, state, conn)
    return await _long_poll(request, state, conn)


async def _websocket(request: web.Request, state: ServiceState, conn: Connection) -> web.StreamResponse:
    limits = state.limits
    ws = web.WebSocketResponse(compress=False, max_msg_size=max(4 * limits.max_message_size, 1 << 20))
    await ws.prepare(request)
    transport = request.transport
    if transport is None:
        state.discard(conn)
        return ws
    conn.transport = WEBSOCKETS
    conn.sink = WebSocketSink(transport, limits.max_outgoing_buffer)
    conn.created = conn.last_received = time.monotonic()

    def report(text: str) -> None:
        note(request, text)

    failure: BaseException | None = None
    try:
        async for msg in ws:
            if msg.type == WSMsgType.TEXT:
                receive(state, conn, msg.data.encode(), binary_transport=True, report=report)
            elif msg.type == WSMsgType.BINARY:
                receive(state, conn, msg.data, binary_transport=True, report=report)
            elif msg.type == WSMsgType.ERROR:
                failure = msg.data  # e.g. a frame over the reader's cap: aiohttp closed with 1009
                break
            if conn.closed:
                break
        failure = failure or ws.exception()
        if failure is not None and not conn.closed:
            state.stats.protocol_errors += 1
            report(f"closed: WebSocket error {failure}")
    finally:
        was_open = not conn.closed
        state.discard(conn)
        if was_open and not ws.closed and not transport.is_closing():
            conn.sink.finish(None)  # our side ends first (e.g. the client sent Close): say goodbye properly
    return ws


async def _sse(request: web.Request, state: ServiceState, conn: Connection) -> web.StreamResponse:
    resp = web.StreamResponse(headers={
        "Content-Type": "text/event-stream", "Cache-Control": "no-cache,no-store", "Pragma": "no-cache",
        "Content-Encoding": "identity"})
    await resp.prepare(request)
    sink = QueueSink("sse", state.limits.max_outgoing_buffer)
    conn.transport, conn.sink = SSE, sink
    conn.created = conn.last_received = time.monotonic()
    try:
        await resp.write(b":\r\n")
        while True:
            await sink.event.wait()
            data = sink.take()
            if data:
                await resp.write(data)
            if sink.finished:
                break
    except ConnectionError:
        note(request, "the client went away")
    finally:  # a cancelled request (the client left) ends here too, and the cancellation goes on
        state.discard(conn)
        sink.finish(None)
    return resp


async def _long_poll(request: web.Request, state: ServiceState, conn: Connection) -> web.StreamResponse:
    if conn.transport is None:
        # First poll: marks the connection as long polling and returns at once, empty (as ASP.NET Core).
        _start_long_polling(state, conn)
        return web.Response(status=200, body=b"", content_type="application/octet-stream")
    sink = conn.sink
    assert isinstance(sink, QueueSink)
    generation = sink.supersede() if conn.polling else sink.generation
    conn.polling = True
    deadline = time.monotonic() + state.limits.long_poll_timeout
    try:
        while True:
            if sink.generation != generation:
                return web.Response(status=204)  # a newer poll took over
            if sink.chunks:
                return web.Response(status=200, body=sink.take(), content_type="application/octet-stream")
            if sink.finished:
                return web.Response(status=204)
            sink.event.clear()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return web.Response(status=200, body=b"", content_type="application/octet-stream")
            try:
                await asyncio.wait_for(sink.event.wait(), remaining)
            except TimeoutError:
                pass
    finally:
        if sink.generation == generation:
            conn.polling = False
            conn.last_received = time.monotonic()


def _start_long_polling(state: ServiceState, conn: Connection) -> None:
    conn.transport = LONG_POLLING
    conn.sink = QueueSink("raw", state.limits.max_outgoing_buffer)
    conn.created = conn.last_received = time.monotonic()


async def _drain_closed_poll(conn: Connection) -> web.StreamResponse:
    sink = conn.sink
    if isinstance(sink, QueueSink) and sink.chunks:
        return web.Response(status=200, body=sink.take(), content_type="application/octet-stream")
    return web.Response(status=204)


async def send(request: web.Request) -> web.StreamResponse:
    """``POST /client/?id=..``: messages from an SSE or long-polling client."""
    state = request.app[STATE_KEY]
    conn = _posted_to(request)
    if isinstance(conn, web.Response):
        return conn
    if conn.closed:
        return _text(404, "No Connection with that ID")
    if conn.transport == WEBSOCKETS:
        return _text(405, "POST requests are not allowed on WebSocket connections.")
    if conn.transport is None:
        # signalrcore posts its handshake before the first poll; SSE clients always open the stream first.
        _start_long_polling(state, conn)
    limit = state.limits.max_message_size
    try:
        if request.content_length is not None and request.content_length > limit:
            raise web.HTTPRequestEntityTooLarge(max_size=limit, actual_size=request.content_length)
        data = await request.read()  # chunked bodies are cut at the app's client_max_size
    except web.HTTPRequestEntityTooLarge:
        return _text(413, _close_oversized(state, conn, lambda text: note(request, text)))
    receive(state, conn, data, binary_transport=conn.transport == LONG_POLLING,
            report=lambda text: note(request, text))
    return web.Response(status=200)


async def delete(request: web.Request) -> web.StreamResponse:
    """``DELETE /client/?id=..``: a long-polling client leaving."""
    state = request.app[STATE_KEY]
    conn = _posted_to(request)
    if isinstance(conn, web.Response):
        return conn
    if conn.transport != LONG_POLLING:
        return _text(400, "Cannot terminate this connection using the DELETE endpoint.")
    state.discard(conn)
    if conn.sink is not None:
        conn.sink.finish(None)
    note(request, "long polling ended by the client")
    return _text(202, "")

