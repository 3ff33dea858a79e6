"""The functions of function_app.py called the way the worker calls them: request, documents and Out
objects."""

from __future__ import annotations

import json
import logging
import re
import uuid

import azure.functions as func
import pytest
from chat import handlers
from functions_testkit import Context, Out, body_json, request

ROOM = {"room": "general"}
CREATED_AT = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z")


JSON = {"Content-Type": "application/json"}


async def save(caller, payload, room="general", raw=None, headers=None):
    req = request(
        "POST",
        f"/api/rooms/{room}/messages",
        raw if raw is not None else payload,
        route_params={"room": room},
        headers={**JSON, "Authorization": caller[1]} if headers is None else headers,
    )
    return await handlers.save_chat(req)


async def stored(store, room: str, message_id: str) -> dict:
    from azure.cosmos.aio import CosmosClient

    async with CosmosClient.from_connection_string(store.connection_string) as client:
        item = (
            await client.get_database_client("chat")
            .get_container_client("messages")
            .read_item(message_id, partition_key=room)
        )
        return dict(item)


async def test_save_chat_stores_and_returns_the_public_message(store, caller):
    response = await save(caller, {"user": " ada ", "text": "hi 👋"})
    assert response.status_code == 201
    message = body_json(response)
    assert set(message) == {"id", "room", "user", "authorId", "text", "createdAt"}
    assert message["user"] == "ada" and message["text"] == "hi 👋" and message["room"] == "general"
    assert message["authorId"] == caller[0]  # the verified identity, not anything the body said
    assert uuid.UUID(message["id"]).version == 4
    assert CREATED_AT.fullmatch(message["createdAt"])
    document = await stored(store, "general", message["id"])
    assert {k: document[k] for k in message} == message
    assert "👋".encode() in response.get_body()  # UTF-8 on the wire, not \u escapes
    assert response.mimetype == "application/json"


@pytest.mark.parametrize(
    ("payload", "room", "raw", "status", "field"),
    [
        ({"user": "a", "text": "b"}, "Bad Room", None, 400, "room"),
        (None, "general", b"not json", 400, "body"),
        (None, "general", b"[1,2]", 400, "body"),
        (None, "general", b"[" * 8000, 400, "body"),
        ({"user": "a", "text": "b" * 9000}, "general", None, 413, "body"),
        ({"text": "b"}, "general", None, 400, "user"),
        ({"user": "a", "text": ""}, "general", None, 400, "text"),
        ({"user": "a" * 40, "text": "b"}, "general", None, 400, "user"),
        ({"user": "a", "text": "b\x07"}, "general", None, 400, "text"),
        ({"user": "a", "text": "b", "id": "123"}, "general", None, 400, "id"),
        ({"user": "a", "text": "b", "extra": 1}, "general", None, 400, "extra"),
        ({"user": "a", "text": "b", "authorId": "A" * 22}, "general", None, 400, "authorId"),
    ],
)
async def test_save_chat_refusals_write_nothing(store, caller, payload, room, raw, status, field):
    message_id = str(uuid.uuid4())
    if isinstance(payload, dict) and "id" not in payload:
        payload = {**payload, "id": message_id}
    response = await save(caller, payload, room=room, raw=raw)
    assert response.status_code == status
    error = body_json(response)["error"]
    assert error["field"] == field and error["code"] and error["message"]
    from azure.cosmos import exceptions

    with pytest.raises(exceptions.CosmosResourceNotFoundError):
        await stored(store, "general", message_id)


def doc(i: int, room: str = "general", created: str | None = None, **extra) -> func.Document:
    return func.Document.from_dict(
        {
            "id": f"m{i:04d}",
            "room": room,
            "user": "u",
            "text": f"t{i}",
            "createdAt": created or f"2026-11-27T21:{i // 60:02d}:{i % 60:02d}.000Z",
            "_rid": "x",
            "_self": "y",
            "_etag": "z",
            "_ts": 1,
            **extra,
        }
    )


def history(app_module, docs, **params):
    req = request("GET", "/api/rooms/general/messages", params=params, route_params=ROOM)
    return handlers.history(req, func.DocumentList(docs))


def test_history_latest_oldest_first_public_fields_only(app_module):
    newest_first = [doc(i) for i in range(120, 0, -1)]  # the binding's ORDER BY createdAt DESC
    response = history(app_module, newest_first)
    assert response.status_code == 200
    messages = body_json(response)["messages"]
    assert [m["id"] for m in messages] == [f"m{i:04d}" for i in range(71, 121)]
    assert all(set(m) == {"id", "room", "user", "text", "createdAt"} for m in messages)


def test_history_limit_and_after(app_module):
    docs = [doc(i) for i in range(200, 0, -1)]
    assert [m["id"] for m in body_json(history(app_module, docs, limit="3"))["messages"]] == [
        "m0198",
        "m0199",
        "m0200",
    ]
    after = doc(10)["createdAt"]
    page = body_json(history(app_module, docs, limit="5", after=after))["messages"]
    assert [m["id"] for m in page] == ["m0011", "m0012", "m0013", "m0014", "m0015"]
    assert body_json(history(app_module, docs, after=doc(200)["createdAt"]))["messages"] == []


def test_history_sends_after_older_than_a_full_window_to_history_after(app_module):
    """The window holds the newest 200 (m0201..m0400): it proves completeness back to m0201 only."""
    window = [doc(i) for i in range(400, 200, -1)]
    for older in (doc(150)["createdAt"], doc(200)["createdAt"]):
        response = history(app_module, window, limit="7", after=older)
        assert response.status_code == 307
        encoded = older.replace(":", "%3A")
        assert response.headers["Location"] == f"/api/rooms/general/messages/after/{encoded}?limit=7"
        assert response.get_body() == b""
    at_the_edge = body_json(history(app_module, window, limit="2", after=doc(201)["createdAt"]))["messages"]
    assert [m["id"] for m in at_the_edge] == ["m0202", "m0203"]
    # a room with fewer than 200 messages is whole in its window: any `after` is answered here
    small_room = [doc(i) for i in range(150, 0, -1)]
    page = body_json(history(app_module, small_room, limit="2", after="2000-01-01T00:00:00.000Z"))["messages"]
    assert [m["id"] for m in page] == ["m0001", "m0002"]


def history_after(app_module, docs, after, **params):
    route = {**ROOM, "after": after}
    req = request("GET", f"/api/rooms/general/messages/after/{after}", params=params, route_params=route)
    return handlers.history_after(req, func.DocumentList(docs))


def test_history_after_answers_from_its_query(app_module):
    oldest_first = [doc(i) for i in range(151, 351)]  # the binding: > after, ORDER BY createdAt, id, TOP 200
    response = history_after(app_module, oldest_first, doc(150)["createdAt"], limit="3")
    assert response.status_code == 200
    assert [m["id"] for m in body_json(response)["messages"]] == ["m0151", "m0152", "m0153"]
    assert len(body_json(history_after(app_module, oldest_first, doc(150)["createdAt"]))["messages"]) == 50
    for after, params, field in [
        ("yesterday", {}, "after"),
        ("2026-02-30T00:00:00.000Z", {}, "after"),
        (doc(1)["createdAt"], {"limit": "0"}, "limit"),
    ]:
        refused = history_after(app_module, oldest_first, after, **params)
        assert refused.status_code == 400 and body_json(refused)["error"]["field"] == field


def test_history_orders_equal_timestamps_by_id(app_module):
    same = "2026-11-27T21:00:00.000Z"
    docs = [doc(3, created=same), doc(1, created=same), doc(2, created=same)]
    assert [m["id"] for m in body_json(history(app_module, docs))["messages"]] == ["m0001", "m0002", "m0003"]


@pytest.mark.parametrize(
    ("params", "field"),
    [({"limit": "0"}, "limit"), ({"limit": "500"}, "limit"), ({"after": "2026-11-27"}, "after")],
)
def test_history_refusals(app_module, params, field):
    response = history(app_module, [doc(1)], **params)
    assert response.status_code == 400
    assert body_json(response)["error"]["field"] == field


def test_history_bad_room_is_400(app_module):
    req = request("GET", "/api/rooms/X/messages", route_params={"room": "X"})
    response = handlers.history(req, func.DocumentList([]))
    assert response.status_code == 400 and body_json(response)["error"]["field"] == "room"


async def negotiate(caller, user_id=None, info="{}"):
    user_id = caller[0] if user_id is None else user_id
    req = request(
        "POST",
        f"/api/negotiate/{user_id}",
        route_params={"userId": user_id},
        headers={"Authorization": caller[1]},
    )
    return await handlers.negotiate(req, info)


async def test_negotiate_passes_connection_info_through_to_its_own_identity(store, caller):
    info = json.dumps({"url": "https://chat.service.signalr.net/client/?hub=chat", "accessToken": "e.y.j"})
    response = await negotiate(caller, info=info)
    assert response.status_code == 200
    assert body_json(response) == json.loads(info)
    assert response.mimetype == "application/json"
    assert response.headers["Cache-Control"] == "no-store"  # a token must never come from a cache
    assert response.headers["X-Content-Type-Options"] == "nosniff"


async def test_negotiate_for_another_user_id_hands_out_nothing(store, caller):
    """The binding made a token for the route's user id; only that identity may receive it."""
    info = json.dumps({"url": "u", "accessToken": "token-for-someone-else"})
    response = await negotiate(caller, user_id="B" * 22, info=info)
    assert response.status_code == 403
    assert body_json(response)["error"] == {
        "code": "wrong_identity",
        "message": "userId must be the id of the caller's identity",
        "field": "userId",
    }
    assert b"token-for-someone-else" not in response.get_body()


@pytest.mark.parametrize(("function", "action"), [("join_room", "add"), ("leave_room", "remove")])
async def test_group_actions_move_only_the_callers_own_user(
    app_module, store, caller, monkeypatch, caplog, function, action
):
    """No SignalR setting here, so the connection check cannot run: the output binding decides, as it would
    without the check (tests/functions/test_presence.py covers the check against a real service)."""
    monkeypatch.delenv("AzureSignalRConnectionString", raising=False)
    monkeypatch.delenv("AzureSignalRConnectionString__serviceUri", raising=False)
    out: Out[str] = Out()
    req = request(
        "POST",
        "/api/rooms/room-7/x",
        {},
        route_params={"room": "room-7"},
        headers={**JSON, "Authorization": caller[1]},
    )
    with caplog.at_level(logging.WARNING, logger="chat.handlers"):
        response = await getattr(app_module, function)(req, out)
    assert response.status_code == 202
    assert json.loads(out.value) == [{"action": action, "groupName": "room-7", "userId": caller[0]}]
    assert "connection check skipped: AzureSignalRConnectionString is not set" in caplog.text


@pytest.mark.parametrize("function", ["join_room", "leave_room"])
async def test_group_action_refusals_send_nothing(app_module, store, caller, function):
    auth = {**JSON, "Authorization": caller[1]}
    for room, payload, headers, status, field in [
        ("no way", {}, auth, 400, "room"),
        # naming someone else's connection is refused, not ignored
        ("ok", {"connectionId": "their-connection"}, auth, 400, "connectionId"),
        ("ok", {"x": 1}, auth, 400, "x"),
        ("ok", {}, {"Authorization": caller[1], "Content-Type": "text/plain"}, 415, "Content-Type"),
        ("ok", {}, JSON, 401, "Authorization"),
        ("ok", {}, {**JSON, "Authorization": "Bearer v1.forged"}, 401, "Authorization"),
    ]:
        out: Out[str] = Out()
        req = request("POST", "/x", payload, route_params={"room": room}, headers=headers)
        response = await getattr(app_module, function)(req, out)
        assert (response.status_code, body_json(response)["error"]["field"]) == (status, field)
        assert out.calls == 0


async def test_feed_sends_one_message_per_document_to_its_room_group(app_module):
    docs = func.DocumentList([doc(1, "general"), doc(2, "rust"), doc(3, "general"), doc(4, "zig-lang")])
    out: Out[str] = Out()
    # No $return binding: must return None.
    assert await app_module.feed_to_signalr(docs, out, Context()) is None
    sent = json.loads(out.value)
    assert out.calls == 1  # serialised once for the whole batch
    assert [(m["groupName"], m["arguments"][0]["id"]) for m in sent] == [
        ("general", "m0001"),
        ("rust", "m0002"),
        ("general", "m0003"),
        ("zig-lang", "m0004"),
    ]
    for message in sent:
        assert set(message) == {"target", "arguments", "groupName"}
        assert message["target"] == "newMessage"
        assert len(message["arguments"]) == 1
        assert set(message["arguments"][0]) == {
            "id",
            "room",
            "user",
            "text",
            "createdAt",
        }  # no authorId: none


async def test_feed_skips_foreign_documents_and_sends_nothing_for_an_empty_batch(app_module, caplog):
    out: Out[str] = Out()
    with caplog.at_level(logging.WARNING):
        foreign = func.DocumentList([func.Document.from_dict({"id": "lease-ish"})])
        await app_module.feed_to_signalr(foreign, out, Context())
    assert out.calls == 0
    assert "lease-ish" in caplog.text


async def test_feed_skips_each_foreign_document_with_one_line_naming_it(app_module, caplog):
    out: Out[str] = Out()
    batch = func.DocumentList([doc(1), func.Document.from_dict({"id": "lease-ish"}), doc(2)])
    with caplog.at_level(logging.WARNING, logger="chat.messages"):
        await app_module.feed_to_signalr(batch, out, Context())
    assert [r.getMessage() for r in caplog.records if r.name == "chat.messages"] == [
        "FeedToSignalR skipped a document that is not a chat message (id='lease-ish')"
    ]
    assert [m["arguments"][0]["id"] for m in json.loads(out.value)] == ["m0001", "m0002"]


async def test_a_retried_batch_is_logged_in_one_line_with_its_ids(app_module, caplog):
    """The SignalR output fails after the handler returned, so the handler learns of it on the retry."""
    batch = func.DocumentList([doc(1), doc(2)])
    with caplog.at_level(logging.INFO, logger="chat.messages"):
        await app_module.feed_to_signalr(batch, Out(), Context(0, 10))  # a first attempt: nothing
        await app_module.feed_to_signalr(batch, Out(), Context(3, 10))
        await app_module.feed_to_signalr(batch, Out(), Context(10, 10))
    lines = [r.getMessage() for r in caplog.records if r.name == "chat.messages"]
    assert lines == [
        "FeedToSignalR retry 3 of 10 for a batch whose previous attempt failed: 2 documents, ids=m0001,m0002",
        "FeedToSignalR retry 10 of 10 for a batch whose previous attempt failed (the last: if it fails too, "
        "they are not sent live; clients get them from History): 2 documents, ids=m0001,m0002",
    ]


async def test_one_log_line_per_invocation(store, caller, caplog):
    with caplog.at_level(logging.INFO, logger="cosmic_chat"):
        await save(caller, {"user": "a", "text": "secret words"})
    lines = [r.getMessage() for r in caplog.records if r.name == "cosmic_chat"]
    assert len(lines) == 1
    assert re.fullmatch(r"SaveChat 201 in \d+\.\d ms", lines[0])
    assert "secret words" not in caplog.text
    assert caller[1].split(".")[-1] not in caplog.text  # nor the identity token
