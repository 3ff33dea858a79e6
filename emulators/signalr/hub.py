"""The service's state: connections, hubs, groups, users, fan-out and the counters behind ``GET /stats``.

Nothing here does I/O. A connection owns a *sink* (its transport's outgoing side, bounded); fan-out
encodes a message once per (protocol, framing) pair and pushes the same bytes into every target's
sink without awaiting any of them, so one stalled socket can never hold up the others. A sink that
refuses bytes (over its bound) gets its connection dropped and counted.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from .protocol import PING_MESSAGE, HubCodec, close_message

log = logging.getLogger("emulators.signalr")

WEBSOCKETS, SSE, LONG_POLLING = "WebSockets", "ServerSentEvents", "LongPolling"
TRANSPORTS = (WEBSOCKETS, SSE, LONG_POLLING)
# Azure/azure-signalr docs/swagger/V20220601.json, PUT /api/hubs/{hub}/users/{user}/groups/{group}, `ttl`.
MAX_USER_GROUPS_WITHOUT_TTL = 100


@dataclass
class Limits:
    """Timeouts and bounds; defaults are the service's (HubOptionsSetup, LongPollingOptions, ...)."""

    keepalive_interval: float = 15.0
    client_timeout: float = 30.0
    handshake_timeout: float = 15.0
    disconnect_timeout: float = 15.0
    long_poll_timeout: float = 90.0
    max_message_size: int = 32 * 1024  # one incoming frame / POST body from a client
    max_outgoing_buffer: int = 1024 * 1024  # bytes queued for one client before it is dropped
    token_leeway: float = 0.0


class Sink(Protocol):
    """The outgoing side of one transport."""

    kind: str  # connections whose sinks share a kind (and protocol) get byte-identical frames

    def frame(self, payload: bytes) -> bytes: ...

    def push(self, framed: bytes) -> bool:
        """Queue bytes without blocking; False when the bound is exceeded (nothing queued then)."""
        ...

    def finish(self, framed: bytes | None) -> None:
        """Send the last bytes (if any, ignoring the bound) and end the transport."""
        ...


def new_id() -> str:
    """16 random bytes, base64url without padding, like ASP.NET Core's connection ids and tokens."""
    return base64.urlsafe_b64encode(os.urandom(16)).rstrip(b"=").decode()


@dataclass(eq=False, slots=True)
class Connection:
    """One client connection, from negotiate to close (slots: thousands of these sit idle)."""

    id: str
    token: str
    hub: str
    user_id: str | None
    transport: str | None = None
    codec: HubCodec | None = None
    sink: Sink | None = None
    groups: set[str] = field(default_factory=set)
    created: float = field(default_factory=time.monotonic)
    last_sent: float = field(default_factory=time.monotonic)
    last_received: float = field(default_factory=time.monotonic)
    online: bool = False  # handshake done, reachable by REST
    closed: bool = False
    polling: bool = False  # a long poll is waiting right now
    auth_timer: asyncio.TimerHandle | None = None  # closes it when its authentication expires


@dataclass
class Stats:
    messages_in: int = 0  # REST send requests and hub messages received from clients
    messages_out: int = 0  # hub messages delivered to client sinks
    drops: int = 0  # clients closed for exceeding their outgoing buffer
    protocol_errors: int = 0
    auth_failures: int = 0


@dataclass
class Hub:
    """Connections of one hub (name lower-cased: hub names are case-insensitive in the service)."""

    name: str
    connections: dict[str, Connection] = field(default_factory=dict)
    users: dict[str, set[Connection]] = field(default_factory=dict)
    groups: dict[str, set[Connection]] = field(default_factory=dict)
    # user-scoped memberships survive reconnects; value is the expiry (monotonic) or None
    user_groups: dict[str, dict[str, float | None]] = field(default_factory=dict)
    expiring: dict[tuple[str, str], float] = field(default_factory=dict)

    # -- membership -------------------------------------------------------------------------

    def add_to_group(self, conn: Connection, group: str) -> None:
        self.groups.setdefault(group, set()).add(conn)
        conn.groups.add(group)

    def remove_from_group(self, conn: Connection, group: str) -> None:
        members = self.groups.get(group)
        if members is not None:
            members.discard(conn)
            if not members:
                del self.groups[group]
        conn.groups.discard(group)

    def remove_from_all_groups(self, conn: Connection) -> None:
        for group in list(conn.groups):
            self.remove_from_group(conn, group)

    def expire_user_groups(self) -> None:
        """Drop user memberships whose ``ttl`` ran out (only users added with a ttl are looked at)."""
        if not self.expiring:
            return
        now = time.monotonic()
        for user, group in [(u, g) for (u, g), expiry in self.expiring.items() if expiry <= now]:
            self.remove_user_from_group(user, group)

    def add_user_to_group(self, user: str, group: str, ttl: float | None = None) -> None:
        """Every current connection of the user joins, and so do the user's future connections. Without a
        TTL the service keeps "only the latest updated 100 groups" of a user (V20220601.json, AddUserToGroup
        `ttl`): the least recently added one beyond that is dropped, for its connections too."""
        expiry = time.monotonic() + ttl if ttl is not None else None
        memberships = self.user_groups.setdefault(user, {})
        memberships.pop(group, None)  # re-adding makes it the latest updated
        memberships[group] = expiry
        if expiry is None:
            self.expiring.pop((user, group), None)
        else:
            self.expiring[(user, group)] = expiry
        for conn in self.users.get(user, ()):
            self.add_to_group(conn, group)
        permanent = [g for g, e in memberships.items() if e is None]
        for oldest in permanent[: max(0, len(permanent) - MAX_USER_GROUPS_WITHOUT_TTL)]:
            self.remove_user_from_group(user, oldest)

    def remove_user_from_group(self, user: str, group: str) -> None:
        self.expiring.pop((user, group), None)
        memberships = self.user_groups.get(user)
        if memberships is not None:
            memberships.pop(group, None)
            if not memberships:
                del self.user_groups[user]
        for conn in self.users.get(user, ()):
            self.remove_from_group(conn, group)

    def remove_user_from_all_groups(self, user: str) -> None:
        for group in list(self.user_groups.get(user, {})):
            self.remove_user_from_group(user, group)
        for conn in self.users.get(user, ()):
            self.remove_from_all_groups(conn)

    def user_in_group(self, user: str, group: str) -> bool:
        self.expire_user_groups()
        if group in self.user_groups.get(user, {}):
            return True
        return any(group in conn.groups for conn in self.users.get(user, ()))

    def group_members(self, group: str) -> set[Connection]:
        self.expire_user_groups()
        return self.groups.get(group, set())

    # -- lifecycle ---------------------------------------------------------------------------

    def attach(self, conn: Connection) -> None:
        self.connections[conn.id] = conn
        if conn.user_id is not None:
            self.users.setdefault(conn.user_id, set()).add(conn)
            self.expire_user_groups()
            for group in self.user_groups.get(conn.user_id, {}):
                self.add_to_group(conn, group)

    def detach(self, conn: Connection) -> None:
        self.connections.pop(conn.id, None)
        self.remove_from_all_groups(conn)
        if conn.user_id is not None:
            conns = self.users.get(conn.user_id)
            if conns is not None:
                conns.discard(conn)
                if not conns:
                    del self.users[conn.user_id]


class ServiceState:
    """All hubs plus the connections still between negotiate and handshake."""

    def __init__(self, limits: Limits | None = None) -> None:
        self.limits = limits or Limits()
        self.hubs: dict[str, Hub] = {}
        self.by_token: dict[str, Connection] = {}
        self.by_id: dict[str, Connection] = {}
        # closed long-polling connections whose last poll (with the Close message) has not come yet
        self.draining: dict[str, tuple[Connection, float]] = {}
        self.stats = Stats()
        self._sweeper: asyncio.Task[None] | None = None

    # -- lookup ------------------------------------------------------------------------------

    def hub(self, name: str) -> Hub:
        key = name.lower()
        hub = self.hubs.get(key)
        if hub is None:
            hub = self.hubs[key] = Hub(key)
        return hub

    def existing_hub(self, name: str) -> Hub | None:
        return self.hubs.get(name.lower())

    def forget_if_empty(self, hub: Hub) -> None:
        """Drop a hub nobody is in (REST calls may name any hub: they must not pile up)."""
        if not (hub.connections or hub.groups or hub.user_groups) and self.hubs.get(hub.name) is hub:
            del self.hubs[hub.name]

    def find(self, token_or_id: str) -> Connection | None:
        """By connection token, or by connection id (signalrcore sends ``id=<connectionId>`` even on v1)."""
        conn = self.by_token.get(token_or_id) or self.by_id.get(token_or_id)
        if conn is None and token_or_id in self.draining:
            conn = self.draining[token_or_id][0]
        return conn

    # -- lifecycle ---------------------------------------------------------------------------

    def create(self, hub: str, user_id: str | None, version: int,
               auth_expires_on: float | None = None) -> Connection:
        """A negotiated connection; ``auth_expires_on`` (Unix seconds) closes it then, wherever it is."""
        conn_id = new_id()
        token = new_id() if version >= 1 else conn_id
        conn = Connection(id=conn_id, token=token, hub=hub.lower(), user_id=user_id)
        self.by_token[token] = conn
        self.by_id[conn_id] = conn
        if auth_expires_on is not None:
            # one timer for the few connections that ask for it, rather than a per-second scan of all
            delay = max(0.0, auth_expires_on - time.time())
            conn.auth_timer = asyncio.get_running_loop().call_later(delay, self._authentication_expired, conn)
        return conn

    def _authentication_expired(self, conn: Connection) -> None:
        conn.auth_timer = None
        log.info("connection %s closed: its authentication expired", conn.id)
        self.close(conn, "Connection closed by the service: the authentication expired. Reconnect with a "
                         "new access token.", allow_reconnect=True)

    def go_online(self, conn: Connection) -> None:
        conn.online = True
        self.hub(conn.hub).attach(conn)

    def discard(self, conn: Connection) -> None:
        """Forget a connection (client left, or it was closed); idempotent."""
        if conn.closed:
            return
        conn.closed = True
        if conn.auth_timer is not None:
            conn.auth_timer.cancel()
            conn.auth_timer = None
        self.by_token.pop(conn.token, None)
        self.by_id.pop(conn.id, None)
        if conn.transport == LONG_POLLING:
            self.draining[conn.token] = (conn, time.monotonic())
        hub = self.hubs.get(conn.hub)
        if hub is not None:
            hub.detach(conn)
            self.forget_if_empty(hub)

    def close(self, conn: Connection, error: str | None = None, allow_reconnect: bool = False) -> None:
        """Server-side close: a Close message (if the handshake happened), then the transport ends."""
        if conn.closed:
            return
        sink = conn.sink
        final = None
        if sink is not None and conn.codec is not None and conn.online:
            final = sink.frame(conn.codec.encode(close_message(error, allow_reconnect)))
        self.discard(conn)
        if sink is not None:
            sink.finish(final)

    def drop_slow(self, conn: Connection) -> None:
        self.stats.drops += 1
        log.warning("dropped slow client %s on hub %s: over %d bytes queued",
                    conn.id, conn.hub, self.limits.max_outgoing_buffer)
        self.close(conn, "Connection closed by the service: the client is not reading its messages fast "
                         "enough.")

    # -- fan-out -----------------------------------------------------------------------------

    def deliver(self, targets: Iterable[Connection], message: dict[str, Any]) -> int:
        """Encode once per protocol and framing, push to every target, never await; returns deliveries."""
        payloads: dict[str, bytes] = {}
        frames: dict[tuple[str, str], bytes] = {}
        delivered = 0
        slow: list[Connection] = []
        now = time.monotonic()
        for conn in targets:
            sink, codec = conn.sink, conn.codec
            if sink is None or codec is None or not conn.online:
                continue
            key = (codec.name, sink.kind)
            framed = frames.get(key)
            if framed is None:
                payload = payloads.get(codec.name)
                if payload is None:
                    payload = payloads[codec.name] = codec.encode(message)
                framed = frames[key] = sink.frame(payload)
            if sink.push(framed):
                delivered += 1
                conn.last_sent = now
            else:
                slow.append(conn)
        for conn in slow:
            self.drop_slow(conn)
        self.stats.messages_out += delivered
        return delivered

    def send_to_connection(self, conn: Connection, message: dict[str, Any]) -> bool:
        return self.deliver((conn,), message) == 1

    # -- housekeeping ------------------------------------------------------------------------

    def start(self) -> None:
        if self._sweeper is None:
            self._sweeper = asyncio.get_running_loop().create_task(self._sweep_forever())

    async def stop(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            try:
                await self._sweeper
            except asyncio.CancelledError:
                pass
            self._sweeper = None
        for conn in list(self.by_token.values()):
            self.close(conn, "The service is shutting down.", allow_reconnect=True)

    async def _sweep_forever(self) -> None:
        """One timer for all connections (keep-alive, timeouts) instead of one task each: memory stays low."""
        limits = self.limits
        period = max(0.05, min(limits.keepalive_interval, limits.client_timeout, limits.handshake_timeout,
                               limits.disconnect_timeout) / 4)
        while True:
            await asyncio.sleep(period)
            try:
                self.sweep(time.monotonic())
            except Exception:  # a bug here must not stop keep-alives for everyone
                log.exception("sweep failed")

    def sweep(self, now: float) -> None:
        limits = self.limits
        pings: list[Connection] = []
        for token, (_, since) in list(self.draining.items()):
            if now - since > limits.disconnect_timeout:
                del self.draining[token]
        for conn in list(self.by_token.values()):
            if conn.closed:
                continue
            if conn.transport is None:
                if now - conn.created > limits.disconnect_timeout:
                    self.discard(conn)  # negotiated, never connected
                continue
            if not conn.online:
                if now - conn.created > limits.handshake_timeout:
                    self.close(conn, "Handshake was canceled: no handshake request within the timeout.")
                continue
            if conn.transport == LONG_POLLING:
                if not conn.polling and now - conn.last_received > limits.disconnect_timeout:
                    self.discard(conn)
                    if conn.sink is not None:
                        conn.sink.finish(None)
                continue
            if now - conn.last_received > limits.client_timeout:
                self.close(conn, "Server timeout elapsed without receiving a message from the client.")
                continue
            if now - conn.last_sent >= limits.keepalive_interval:
                pings.append(conn)
        if pings:
            sent = self.deliver(pings, PING_MESSAGE)
            self.stats.messages_out -= sent  # pings are not messages

    def snapshot(self) -> dict[str, Any]:
        by_transport = dict.fromkeys(TRANSPORTS, 0)
        for conn in self.by_token.values():
            if conn.online and conn.transport:
                by_transport[conn.transport] += 1
        return {
            "connections": {"total": sum(by_transport.values()), **by_transport},
            "hubs": {name: {"connections": len(h.connections), "users": len(h.users), "groups": len(h.groups)}
                     for name, h in self.hubs.items() if h.connections or h.groups or h.user_groups},
            "groups": sum(len(h.groups) for h in self.hubs.values()),
            "messages": {"in": self.stats.messages_in, "out": self.stats.messages_out},
            "drops": self.stats.drops,
            "protocolErrors": self.stats.protocol_errors,
            "authFailures": self.stats.auth_failures,
        }
