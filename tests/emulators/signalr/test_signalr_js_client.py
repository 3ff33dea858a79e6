"""The official @microsoft/signalr client (Node) against the emulator: every transport, both protocols."""

from __future__ import annotations

import asyncio

import pytest
from signalr_helpers import NodeClient

from emulators.signalr import Emulator
from emulators.signalr.service_client import ServiceClient

COMBINATIONS = [
    ("WebSockets", "json"), ("WebSockets", "messagepack"),
    ("ServerSentEvents", "json"),
    ("LongPolling", "json"), ("LongPolling", "messagepack"),
]
TRANSPORT_CLASS = {"WebSockets": "WebSocketTransport", "ServerSentEvents": "ServerSentEventsTransport",
                   "LongPolling": "LongPollingTransport"}


@pytest.mark.parametrize(("transport", "protocol"), COMBINATIONS)
async def test_receives_broadcast_user_group_and_connection_sends(
        transport: str, protocol: str, negotiate_url: str, service: ServiceClient, emulator: Emulator,
        node_clients: list[NodeClient]) -> None:
    alice = await NodeClient.start(url=f"{negotiate_url}?user=alice", transport=transport, protocol=protocol)
    bob = await NodeClient.start(url=f"{negotiate_url}?user=bob", transport=transport, protocol=protocol)
    node_clients += [alice, bob]
    a, b = await alice.connected(), await bob.connected()
    assert a["transport"] == b["transport"] == TRANSPORT_CLASS[transport]

    payload = {"id": "m1", "text": "héllo 🚀", "n": 3, "nested": [1, None, True]}
    await service.broadcast("chat", "newMessage", [payload])
    assert (await alice.messages(1))[0]["args"] == [payload]
    assert (await bob.messages(1))[0]["args"] == [payload]

    await service.send_to_user("chat", "bob", "newMessage", ["for bob"])
    await service.add_connection_to_group("chat", "room1", a["connectionId"])
    await service.send_to_group("chat", "room1", "newMessage", ["for room1"])
    await service.send_to_connection("chat", b["connectionId"], "newMessage", ["for bob's connection"])
    await service.broadcast("chat", "newMessage", ["last"])

    assert [m["args"] for m in await alice.messages(2)] == [["for room1"], ["last"]]
    assert [m["args"] for m in await bob.messages(3)] == [["for bob"], ["for bob's connection"], ["last"]]
    stats = emulator.stats()
    assert stats["connections"][transport] == 2


@pytest.mark.parametrize(("transport", "protocol"), COMBINATIONS)
async def test_client_invocation_gets_an_error_completion(transport: str, protocol: str, negotiate_url: str,
                                                          node_clients: list[NodeClient]) -> None:
    client = await NodeClient.start(url=negotiate_url, transport=transport, protocol=protocol)
    node_clients.append(client)
    await client.connected()
    await client.command(cmd="invoke", method="SendMessage", args=["hi"])
    result = await client.next("result")
    assert result["ok"] is False
    assert "serverless" in result["error"]


@pytest.mark.parametrize("transport", ["WebSockets", "ServerSentEvents", "LongPolling"])
async def test_reconnects_after_server_side_close(transport: str, negotiate_url: str, service: ServiceClient,
                                                  node_clients: list[NodeClient]) -> None:
    client = await NodeClient.start(url=negotiate_url, transport=transport, reconnect=True)
    node_clients.append(client)
    first = await client.connected()
    await service.close_connection("chat", first["connectionId"], reason="maintenance")
    reconnecting = await client.next("reconnecting")
    assert "maintenance" in (reconnecting["error"] or "")
    again = await client.next("reconnected")
    assert again["connectionId"] != first["connectionId"]
    assert not await service.connection_exists("chat", first["connectionId"])
    assert await service.connection_exists("chat", again["connectionId"])
    await service.broadcast("chat", "newMessage", ["after reconnect"])
    assert (await client.messages(1))[0]["args"] == ["after reconnect"]


async def test_close_without_reconnect_reports_the_reason(negotiate_url: str, service: ServiceClient,
                                                          node_clients: list[NodeClient]) -> None:
    client = await NodeClient.start(url=negotiate_url, transport="WebSockets")
    node_clients.append(client)
    first = await client.connected()
    await service.close_connection("chat", first["connectionId"], reason="bye now")
    closed = await client.next("closed")
    assert "bye now" in closed["error"]


@pytest.mark.parametrize(("block", "protocol", "expected"), [
    (["WebSockets"], "json", "ServerSentEventsTransport"),
    (["WebSockets", "ServerSentEvents"], "json", "LongPollingTransport"),
    (["WebSockets"], "messagepack", "LongPollingTransport"),  # MessagePack needs Binary: SSE is skipped
])
async def test_falls_back_to_the_next_transport(block: list[str], protocol: str, expected: str,
                                                negotiate_url: str, service: ServiceClient,
                                                node_clients: list[NodeClient]) -> None:
    client = await NodeClient.start(url=negotiate_url, transport="all", protocol=protocol, block=block)
    node_clients.append(client)
    connected = await client.connected()
    assert connected["transport"] == expected
    await service.broadcast("chat", "newMessage", ["via fallback"])
    assert (await client.messages(1))[0]["args"] == ["via fallback"]


async def test_direct_service_url_with_token(emulator: Emulator, service: ServiceClient,
                                             node_clients: list[NodeClient]) -> None:
    """No negotiate function: the service URL and a token, as a browser given connection info would do."""
    info = service.client_connection_info("Chat", user_id="carol")
    client = await NodeClient.start(url=info["url"], accessToken=info["accessToken"], transport="WebSockets")
    node_clients.append(client)
    await client.connected()
    await service.send_to_user("CHAT", "carol", "newMessage", ["hub names ignore case"])
    assert (await client.messages(1))[0]["args"] == ["hub names ignore case"]


async def test_user_groups_follow_the_user_across_connections(negotiate_url: str, service: ServiceClient,
                                                              node_clients: list[NodeClient]) -> None:
    await service.add_user_to_group("chat", "vip", "dave")  # before dave connects
    first = await NodeClient.start(url=f"{negotiate_url}?user=dave", transport="WebSockets")
    second = await NodeClient.start(url=f"{negotiate_url}?user=dave", transport="LongPolling")
    other = await NodeClient.start(url=f"{negotiate_url}?user=erin", transport="WebSockets")
    node_clients += [first, second, other]
    for c in (first, second, other):
        await c.connected()
    await service.send_to_group("chat", "vip", "newMessage", ["vip only"])
    assert (await first.messages(1))[0]["args"] == ["vip only"]
    assert (await second.messages(1))[0]["args"] == ["vip only"]
    await service.remove_user_from_group("chat", "vip", "dave")
    await service.send_to_group("chat", "vip", "newMessage", ["nobody"])
    await service.broadcast("chat", "newMessage", ["everyone"])
    for c in (first, second, other):
        assert (await c.messages(1))[0]["args"] == ["everyone"]


async def test_expired_token_is_refused(service: ServiceClient, node_clients: list[NodeClient]) -> None:
    info = service.client_connection_info("chat", lifetime=-60)
    client = await NodeClient.start(url=info["url"], accessToken=info["accessToken"], transport="WebSockets")
    node_clients.append(client)
    failed = await client.next()
    assert failed["event"] == "failed"
    assert "401" in failed["error"]
    await asyncio.sleep(0)


@pytest.mark.parametrize("protocol", ["json", "messagepack"])
async def test_client_asking_for_stateful_reconnect_still_connects(protocol: str, negotiate_url: str,
                                                                   service: ServiceClient,
                                                                   node_clients: list[NodeClient]) -> None:
    """Stateful reconnect is not advertised: the client falls back to plain WebSockets (handshake v1/v2)."""
    client = await NodeClient.start(url=negotiate_url, transport="WebSockets", protocol=protocol,
                                    stateful=True)
    node_clients.append(client)
    await client.connected()
    await service.broadcast("chat", "newMessage", ["stateless"])
    assert (await client.messages(1))[0]["args"] == ["stateless"]


async def test_authentication_expiry_closes_and_the_client_comes_back(
        negotiate_url: str, service: ServiceClient, node_clients: list[NodeClient]) -> None:
    """CloseOnAuthenticationExpiration: the service closes with allowReconnect; the JS client
    negotiates again through the app (which may refuse or, here, sign it in anew)."""
    client = await NodeClient.start(url=f"{negotiate_url}?user=fay&authSeconds=2", transport="WebSockets",
                                    reconnect=True)
    node_clients.append(client)
    first = await client.connected()
    reconnecting = await client.next("reconnecting", timeout=5)
    assert "authentication expired" in (reconnecting["error"] or "")
    again = await client.next("reconnected")
    assert again["connectionId"] != first["connectionId"]
    await service.send_to_user("chat", "fay", "newMessage", ["signed in again"])
    assert (await client.messages(1))[0]["args"] == ["signed in again"]
