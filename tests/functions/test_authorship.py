"""The attacks of issue 11 on SaveChat, identities and the rate limits, each tried as an attacker would,
against a real Cosmos DB emulator through the SDK the app uses in Azure.

Each test failed before authorship existed: SaveChat upserted whatever `user` the body named under any id."""

from __future__ import annotations

import asyncio
import json
import time
import uuid

import pytest
from azure.cosmos import exceptions
from azure.cosmos.aio import CosmosClient
from chat import handlers, identity, limits
from functions_testkit import body_json, request

JSON = {"Content-Type": "application/json"}


async def new_caller() -> tuple[str, str]:
    response = await handlers.issue_identity(request("POST", "/api/identities"))
    assert response.status_code == 201
    issued = body_json(response)
    return issued["id"], f"Bearer {issued['token']}"


async def post(caller, body, room="general", headers=None):
    headers = {**JSON, "Authorization": caller[1]} if headers is None else headers
    req = request("POST", f"/api/rooms/{room}/messages", body, route_params={"room": room}, headers=headers)
    return await handlers.save_chat(req)


async def stored(store, message_id, room="general") -> dict | None:
    async with CosmosClient.from_connection_string(store.connection_string) as client:
        container = client.get_database_client("chat").get_container_client("messages")
        try:
            return dict(await container.read_item(message_id, partition_key=room))
        except exceptions.CosmosResourceNotFoundError:
            return None


async def test_a_known_id_cannot_be_rewritten_by_another_author(store, app_module):
    alice, mallory = await new_caller(), await new_caller()
    message_id = str(uuid.uuid4())
    first = await post(alice, {"id": message_id, "user": "alice", "text": "lunch at noon"})
    assert first.status_code == 201
    before = await stored(store, message_id)

    # The id is public (History, broadcasts): Mallory reuses it, as Alice and as herself.
    for forged in (
        {"user": "alice", "text": "lunch is cancelled"},
        {"user": "mallory", "text": "lunch at noon"},
    ):
        response = await post(mallory, {"id": message_id, **forged})
        assert response.status_code == 409
        assert body_json(response)["error"] == {
            "code": "id_taken",
            "message": "another message in this room has this id: send a new message with a new id",
            "field": "id",
        }
    assert await stored(store, message_id) == before  # same text, author, createdAt and _etag: untouched


async def test_the_author_cannot_change_a_stored_message_under_its_id_either(store, app_module):
    alice = await new_caller()
    message_id = str(uuid.uuid4())
    assert (await post(alice, {"id": message_id, "user": "alice", "text": "v1"})).status_code == 201
    before = await stored(store, message_id)
    for changed in ({"user": "alice", "text": "v2"}, {"user": "alicia", "text": "v1"}):
        response = await post(alice, {"id": message_id, **changed})
        assert (response.status_code, body_json(response)["error"]["field"]) == (409, "id")
    assert await stored(store, message_id) == before


async def test_a_retry_of_the_same_message_is_answered_with_the_stored_one_and_writes_nothing(
    store, app_module
):
    alice = await new_caller()
    body = {"id": str(uuid.uuid4()).upper(), "user": "alice", "text": "once"}
    first = await post(alice, body)
    await asyncio.sleep(0.01)  # a second write would get a later createdAt
    again = await post(alice, body)
    assert (first.status_code, again.status_code) == (201, 200)
    assert body_json(again) == body_json(first)  # the stored createdAt, not a new one
    document = await stored(store, body["id"].lower())
    assert document["createdAt"] == body_json(first)["createdAt"]
    assert document["_etag"] == (await stored(store, body["id"].lower()))["_etag"]


async def test_concurrent_copies_store_once_and_a_concurrent_rival_gets_409(store, app_module):
    alice, mallory = await new_caller(), await new_caller()
    same = {"id": str(uuid.uuid4()), "user": "alice", "text": "race"}
    statuses = sorted(r.status_code for r in await asyncio.gather(*(post(alice, same) for _ in range(4))))
    assert statuses == [200, 200, 200, 201]

    contested = {"id": str(uuid.uuid4()), "user": "x", "text": "mine"}
    responses = await asyncio.gather(post(alice, contested), post(mallory, contested))
    assert sorted(r.status_code for r in responses) == [201, 409]
    winner = next(r for r in responses if r.status_code == 201)
    assert (await stored(store, contested["id"]))["authorId"] == body_json(winner)["authorId"]


@pytest.mark.parametrize(
    ("authorization", "code"),
    [
        (None, "identity_required"),
        ("", "identity_required"),
        ("Basic YWxpY2U6eA==", "invalid_identity"),
        ("Bearer alice", "invalid_identity"),
    ],
)
async def test_no_write_without_an_identity_the_server_issued(store, app_module, authorization, code):
    headers = dict(JSON) if authorization is None else {**JSON, "Authorization": authorization}
    message_id = str(uuid.uuid4())
    response = await post(None, {"id": message_id, "user": "a", "text": "b"}, headers=headers)
    assert response.status_code == 401
    assert body_json(response)["error"]["code"] == code
    assert body_json(response)["error"]["field"] == "Authorization"
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert await stored(store, message_id) is None


async def test_an_edited_identity_does_not_verify(store, app_module):
    """Local storage is the client's: changing the id (to become someone) breaks the signature."""
    alice, bob = await new_caller(), await new_caller()
    _, bob_sig = bob[1].rsplit(".", 1)
    version_and_alice = alice[1].rsplit(".", 1)[0]
    for forged in (
        f"{version_and_alice}.{bob_sig}",
        alice[1][:-2] + ("AA" if alice[1][-2:] != "AA" else "BB"),
    ):
        response = await post(None, {"user": "a", "text": "b"}, headers={**JSON, "Authorization": forged})
        assert (response.status_code, body_json(response)["error"]["code"]) == (401, "invalid_identity")


async def test_identities_hold_across_instances(store, app_module):
    """Another Flex instance (here: the key cache dropped) reads the same key from the store."""
    alice = await new_caller()
    identity._keys.clear()
    response = await post(alice, {"user": "alice", "text": "after a cold start"})
    assert response.status_code == 201 and body_json(response)["authorId"] == alice[0]


@pytest.mark.parametrize(
    "content_type", [None, "text/plain", "text/plain;charset=UTF-8", "application/x-www-form-urlencoded"]
)
async def test_a_cross_site_simple_post_is_refused(store, app_module, content_type):
    """A page on another site can send these without a preflight; only application/json is accepted."""
    alice = await new_caller()
    headers = {"Authorization": alice[1]} | ({"Content-Type": content_type} if content_type else {})
    message_id = str(uuid.uuid4())
    response = await post(alice, {"id": message_id, "user": "a", "text": "b"}, headers=headers)
    assert response.status_code == 415
    assert body_json(response)["error"] == {
        "code": "unsupported_media_type",
        "message": "send the body as Content-Type: application/json",
        "field": "Content-Type",
    }
    assert await stored(store, message_id) is None
    charset = await post(
        alice,
        {"user": "a", "text": "b"},
        headers={**headers, "Content-Type": "application/json; charset=utf-8"},
    )
    assert charset.status_code == 201


async def test_a_flood_is_refused_with_retry_after_and_others_are_unaffected(store, app_module, monkeypatch):
    monkeypatch.setenv("CHAT_POST_LIMIT", "3/2s")  # read at each call, as a host restart would
    flooder, bystander = await new_caller(), await new_caller()
    while time.time() % 2 > 1.2:  # start early in a window, so all of the flood falls into one
        await asyncio.sleep(0.05)
    ids = [str(uuid.uuid4()) for _ in range(5)]
    statuses = [(await post(flooder, {"id": i, "user": "f", "text": "spam"})).status_code for i in ids]
    assert statuses == [201, 201, 201, 429, 429]
    refused = await post(flooder, {"id": ids[3], "user": "f", "text": "spam"})
    assert refused.status_code == 429
    assert body_json(refused)["error"]["code"] == "rate_limited"
    assert 1 <= int(refused.headers["Retry-After"]) <= 2
    assert await stored(store, ids[3]) is None  # refused means not written
    assert (await post(bystander, {"user": "b", "text": "hello"})).status_code == 201

    await asyncio.sleep(int(refused.headers["Retry-After"]))
    retried = await post(flooder, {"id": ids[3], "user": "f", "text": "spam"})  # the same id, later
    assert retried.status_code == 201


async def test_negotiate_is_limited_per_identity(store, app_module, monkeypatch):
    monkeypatch.setenv("CHAT_NEGOTIATE_LIMIT", "2/60s")
    alice, bob = await new_caller(), await new_caller()

    async def negotiate(caller):
        req = request(
            "POST",
            f"/api/negotiate/{caller[0]}",
            route_params={"userId": caller[0]},
            headers={"Authorization": caller[1]},
        )
        return await handlers.negotiate(req, json.dumps({"url": "u", "accessToken": "t"}))

    assert [(await negotiate(alice)).status_code for _ in range(3)] == [200, 200, 429]
    assert (await negotiate(bob)).status_code == 200


def test_limit_settings_are_validated(monkeypatch):
    monkeypatch.setenv("CHAT_POST_LIMIT", "5/10s")
    assert limits.Limit.from_setting("post", "CHAT_POST_LIMIT", "20/20s") == limits.Limit("post", 5, 10)
    for bad in ("5", "0/10s", "5/0s", "five/10s", "5/10m"):
        monkeypatch.setenv("CHAT_POST_LIMIT", bad)
        with pytest.raises(ValueError, match="CHAT_POST_LIMIT"):
            limits.Limit.from_setting("post", "CHAT_POST_LIMIT", "20/20s")


async def test_a_store_that_refuses_the_app_is_a_503_the_client_retries(
    store, app_module, monkeypatch, caplog
):
    """E.g. the role assignment still propagating in Azure (403): a clear retryable answer, never a 500, and a
    log line for the operator without the document."""
    alice = await new_caller()
    wrong_key = store.connection_string.replace("AccountKey=", "AccountKey=AAAA", 1)
    monkeypatch.setenv("CosmosDBConnection", wrong_key)
    response = await handlers.issue_identity(request("POST", "/api/identities"))
    assert response.status_code == 503 and response.headers["Retry-After"] == "2"
    assert body_json(response)["error"]["code"] == "store_unavailable"
    identity._keys[wrong_key] = identity._keys[store.connection_string]  # the key was read before the outage
    refused = await post(alice, {"user": "alice", "text": "secret words"})
    assert refused.status_code == 503 and body_json(refused)["error"]["code"] == "store_unavailable"
    assert "Cosmos DB failed (CosmosHttpResponseError 401)" in caplog.text
    assert "secret words" not in caplog.text
