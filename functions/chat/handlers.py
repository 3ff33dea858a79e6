"""What each chat function does, given the request and its bindings; function_app.py only declares and
delegates.

Handlers take plain azure.functions objects so tests (and FileServer's in-process dispatch) call them
directly."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import quote

import azure.functions as func

from . import identity, limits, presence, saving
from .errors import ApiError, json_response
from .logs import invocation
from .messages import (
    feed_messages,
    first_after,
    group_action,
    history_window,
    log_retried_batch,
    new_message,
    signalr_value,
)
from .settings import HUB
from .validation import parse_history_query, parse_message, parse_room_action, require_json, validate_room

log = logging.getLogger("chat.handlers")


@invocation("SaveChat")
async def save_chat(req: func.HttpRequest) -> func.HttpResponse:
    """Checks in order of cost, so a refused request costs nothing: media type, identity (one HMAC), the
    body, the author's rate limit (one patch), then the create-if-absent write (chat/saving.py). 201 when
    this call stored the message, 200 when a retry found it already stored."""
    try:
        require_json(req.headers)
        author = await identity.caller(req.headers.get("authorization"))
        room = validate_room(req.route_params.get("room"))
        document = new_message(room, parse_message(req.get_body()), author.id)
        await limits.take(limits.posts(), author.id)
        message, created = await saving.save_once(document)
    except ApiError as error:
        return error.response()
    return json_response(message, 201 if created else 200)


@invocation("IssueIdentity")
async def issue_identity(req: func.HttpRequest) -> func.HttpResponse:
    """A new identity for a browser that has none: `{id, token}`. Stateless (nothing is stored), so it
    costs one HMAC; the id is random, so nobody can ask for someone else's."""
    try:
        key = await identity.signing_key()
    except ApiError as error:
        return error.response()
    issued, token = identity.new_identity(key)
    return json_response({"id": issued.id, "token": token}, 201)


@invocation("History")
def history(req: func.HttpRequest, documents: Iterable[Mapping[str, Any]]) -> func.HttpResponse:
    """`documents` is the room's newest-200 window (the binding may only use `{room}`: see
    function_app.py). It answers every request without `after`, and those whose `after` it reaches back
    to; deeper ones are sent to HistoryAfter, whose query starts at `after` (307, same query)."""
    try:
        room = validate_room(req.route_params.get("room"))
        query = parse_history_query(req.params)
    except ApiError as error:
        return error.response()
    messages = history_window(documents, query.limit, query.after)
    if messages is None:
        # `:` percent-encoded: valid in a path, but some front ends refuse it raw; routing decodes it.
        location = f"/api/rooms/{room}/messages/after/{quote(str(query.after), safe='')}?limit={query.limit}"
        return func.HttpResponse(status_code=307, headers={"Location": location, "Cache-Control": "no-store"})
    return json_response({"messages": messages})


@invocation("HistoryAfter")
def history_after(req: func.HttpRequest, documents: Iterable[Mapping[str, Any]]) -> func.HttpResponse:
    """The first `limit` messages newer than the route's `after`, read from there by the binding."""
    try:
        validate_room(req.route_params.get("room"))
        after = req.route_params.get("after")
        query = parse_history_query({"limit": req.params.get("limit"), "after": after})
    except ApiError as error:
        return error.response()
    return json_response({"messages": first_after(documents, query.limit)})


@invocation("SignalRConfiguration")
async def negotiate(req: func.HttpRequest, connection_info: str) -> func.HttpResponse:
    """The binding has already made `{url, accessToken}` for the route's user id; it is handed out only if
    that id is the caller's own identity, so nobody receives a connection as someone else (the binding
    cannot check a signature: it reads the route). Never cached."""
    try:
        caller = await identity.caller(req.headers.get("authorization"))
        if req.route_params.get("userId") != caller.id:
            raise ApiError(403, "wrong_identity", "userId must be the id of the caller's identity", "userId")
        await limits.take(limits.negotiations(), caller.id)
    except ApiError as error:
        return error.response()
    return func.HttpResponse(
        connection_info,
        status_code=200,
        mimetype="application/json",
        charset="utf-8",
        headers={"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"},
    )


async def _group(req: func.HttpRequest, actions: func.Out[str], action: str) -> func.HttpResponse:
    """Join and leave differ only in the action. They act on the caller's own SignalR user (= identity id),
    so nobody can move anyone else's connection. 202, not 200: the group change is made by the output
    binding after this handler returns, so the user's connection is looked up first (see `presence`): a
    caller with no live connection gets 404 `not_connected` rather than a membership that silently waits
    for a later connection. If the service cannot be asked, the binding is left to decide."""
    try:
        require_json(req.headers)
        caller = await identity.caller(req.headers.get("authorization"))
        room = validate_room(req.route_params.get("room"))
        parse_room_action(req.get_body())
        if not await _connected(caller.id):
            raise ApiError(
                404,
                "not_connected",
                "this identity has no live SignalR connection: negotiate and connect first",
                "Authorization",
            )
    except ApiError as error:
        return error.response()
    actions.set(signalr_value([group_action(action, room, caller.id)]))
    return func.HttpResponse(status_code=202, headers={"Cache-Control": "no-store"})


async def _connected(user_id: str) -> bool:
    try:
        return await presence.user_connected(HUB, user_id)
    except presence.PresenceUnknown as error:
        log.warning("connection check skipped: %s", error)
        return True


@invocation("JoinRoom")
async def join_room(req: func.HttpRequest, actions: func.Out[str]) -> func.HttpResponse:
    return await _group(req, actions, "add")


@invocation("LeaveRoom")
async def leave_room(req: func.HttpRequest, actions: func.Out[str]) -> func.HttpResponse:
    return await _group(req, actions, "remove")


@invocation("FeedToSignalR")
def feed_to_signalr(documents: Iterable[Mapping[str, Any]], signalr: func.Out[str], retry: Any = None) -> str:
    """One newMessage per document, all in one binding value; an empty batch sends nothing.

    `retry` is `context.retry_context`. The SignalR output is sent after this returns, so a failure there
    (429, 5xx, unreachable) is seen here only as the next attempt: each retry logs the batch's ids in one
    line, and the last one says so, so that a batch given up on (not delivered live; still in History)
    can be traced by id."""
    documents = list(documents)
    if retry is not None and retry.retry_count > 0:
        log_retried_batch(documents, retry.retry_count, retry.max_retry_count)
    messages = feed_messages(documents)
    if messages:
        signalr.set(signalr_value(messages))
    return f"{len(documents)} documents -> {len(messages)} messages"
