"""The server-side helper the local Functions host uses to play the SignalR bindings."""

from __future__ import annotations

import time

import jwt
import pytest
from signalr_helpers import RawClient

from emulators.signalr import WELL_KNOWN_ACCESS_KEY, Emulator
from emulators.signalr.service_client import (
    ServiceClient,
    SignalRServiceError,
    parse_connection_string,
)

KEY = WELL_KNOWN_ACCESS_KEY


def test_parses_both_connection_string_forms() -> None:
    local = parse_connection_string(f"Endpoint=http://localhost;Port=8888;AccessKey={KEY};Version=1.0;")
    assert local.endpoint == "http://localhost:8888"
    assert local.audience_base == "http://localhost"
    assert local.access_key == KEY
    azure = parse_connection_string(f"endpoint=https://chat.service.signalr.net/;accesskey={KEY};VERSION=1.0")
    assert azure.endpoint == azure.client_endpoint == "https://chat.service.signalr.net"
    assert azure.audience_base == "https://chat.service.signalr.net"
    key_with_equals = parse_connection_string("Endpoint=https://a.service.signalr.net;AccessKey=abc==;")
    assert key_with_equals.access_key == "abc=="
    split = parse_connection_string(
        f"Endpoint=https://a.service.signalr.net;AccessKey={KEY};ClientEndpoint=https://edge.example.com;"
    )
    assert split.client_endpoint == "https://edge.example.com"


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        (f"AccessKey={KEY};Version=1.0;", "Endpoint"),
        ("Endpoint=https://a.service.signalr.net;Version=1.0;", "AccessKey"),
        (f"Endpoint=ftp://a;AccessKey={KEY};", "http"),
        (f"Endpoint=http://a;Port=http;AccessKey={KEY};", "Port"),
        (f"Endpoint=http://a;AccessKey={KEY};Version=2.0;", "Version"),
        ("nonsense", "Key=Value"),
    ],
)
def test_bad_connection_strings_say_what_is_wrong(text: str, complaint: str) -> None:
    with pytest.raises(ValueError, match=complaint):
        parse_connection_string(text)


def test_connection_info_is_what_the_functions_extension_makes() -> None:
    client = ServiceClient(f"Endpoint=http://localhost;Port=8888;AccessKey={KEY};Version=1.0;")
    info = client.client_connection_info("Chat", user_id="alice", lifetime=600)
    assert info["url"] == "http://localhost:8888/client/?hub=chat"
    claims = jwt.decode(
        info["accessToken"], KEY.encode(), algorithms=["HS256"], audience="http://localhost/client/?hub=chat"
    )
    assert claims["asrs.s.uid"] == "alice"
    assert claims["exp"] - claims["iat"] == 600
    assert abs(claims["iat"] - time.time()) < 5
    closing = client.client_connection_info("chat", "alice", auth_expires_on=time.time() + 60)
    claims = jwt.decode(closing["accessToken"], options={"verify_signature": False})
    assert claims["asrs.s.coae"] == "true" and abs(int(claims["asrs.s.aeo"]) - time.time() - 60) < 5
    assert "asrs.s.coae" not in jwt.decode(info["accessToken"], options={"verify_signature": False})
    anonymous = client.client_connection_info("chat")
    assert "asrs.s.uid" not in jwt.decode(anonymous["accessToken"], options={"verify_signature": False})
    azure = ServiceClient(f"Endpoint=https://x.service.signalr.net;AccessKey={KEY};Version=1.0;")
    assert azure.client_connection_info("chat")["url"] == "https://x.service.signalr.net/client/?hub=chat"
    url, aud = azure.rest_url("Chat", "/groups/a%20b/:send")
    assert (
        url == aud == "https://x.service.signalr.net/api/hubs/chat/groups/a%20b/:send?api-version=2022-06-01"
    )


async def test_rest_calls_raise_on_refusal(emulator: Emulator) -> None:
    wrong = emulator.connection_string.replace(KEY, "Z" * 44)
    async with ServiceClient(wrong) as client:
        with pytest.raises(SignalRServiceError) as refused:
            await client.broadcast("chat", "m", [])
        assert refused.value.status == 401
        assert "/api/hubs/chat/:send" in str(refused.value)
    async with ServiceClient(emulator.connection_string) as client:
        # Adding a connection that is gone is what the Management SDK (and the Functions extension) takes
        # as expected: 404 with x-ms-error-code Error.Connection.NotExisted, no error. Removing it is not.
        await client.add_connection_to_group("chat", "g", "no-such-connection")
        with pytest.raises(SignalRServiceError) as missing:
            await client.remove_connection_from_group("chat", "g", "no-such-connection")
        assert missing.value.status == 404
        assert not await client.connection_exists("chat", "no-such-connection")
        with pytest.raises(ValueError, match="target"):
            await client.send("chat", {"arguments": []})


async def test_output_binding_precedence_and_group_actions(emulator: Emulator) -> None:
    async with ServiceClient(emulator.connection_string) as service:
        ann = await RawClient.connect(
            emulator.url, service.client_connection_info("chat", "ann")["accessToken"]
        )
        ben = await RawClient.connect(
            emulator.url, service.client_connection_info("chat", "ben")["accessToken"]
        )
        try:
            await service.group_action("chat", {"action": "add", "groupName": "g", "userId": "ann"})
            await service.group_action(
                "chat", {"action": "add", "groupName": "g", "connectionId": ben.connection_id}
            )
            assert await service.group_exists("chat", "g") and await service.user_exists("chat", "ben")
            # connectionId wins over userId, groupName; userId over groupName; then group; then everyone
            await service.send(
                "chat",
                {
                    "target": "m",
                    "arguments": [1],
                    "connectionId": ben.connection_id,
                    "userId": "ann",
                    "groupName": "g",
                },
            )
            await service.send("chat", {"target": "m", "arguments": [2], "userId": "ann", "groupName": "g"})
            await service.send("chat", {"target": "m", "arguments": [3], "groupName": "g"})
            await service.group_action("chat", {"action": "remove", "groupName": "g", "userId": "ann"})
            await service.send("chat", {"target": "m", "arguments": [4], "groupName": "g"})
            await service.group_action("chat", {"action": "removeAll", "connectionId": ben.connection_id})
            assert not await service.group_exists("chat", "g")
            await service.send("chat", {"target": "m", "arguments": [5]})
            assert [(await ann.next())["arguments"] for _ in range(3)] == [[2], [3], [5]]
            assert [(await ben.next())["arguments"] for _ in range(4)] == [[1], [3], [4], [5]]
            for bad in (
                {"action": "add", "groupName": "g"},
                {"action": "join", "groupName": "g", "userId": "a"},
                {"action": "add", "userId": "a"},
            ):
                with pytest.raises(ValueError):
                    await service.group_action("chat", bad)
            await service.group_action("chat", {"action": "add", "groupName": "h", "userId": "ben"})
            await service.remove_user_from_all_groups("chat", "ben")
            assert not await service.group_exists("chat", "h")
        finally:
            await ann.close()
            await ben.close()
