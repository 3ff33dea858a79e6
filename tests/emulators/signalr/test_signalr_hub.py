"""The state alone (no sockets): fan-out encodes once per protocol, and a full sink costs only its owner."""

from __future__ import annotations

from typing import Any

from emulators.signalr.hub import Limits, ServiceState
from emulators.signalr.protocol import CODECS


class CountingCodec:
    """Wraps a real codec and counts how often an invocation is serialised."""

    def __init__(self, name: str) -> None:
        self.inner = CODECS[name]
        self.name, self.binary = self.inner.name, self.inner.binary
        self.encoded = 0

    def encode(self, message: dict[str, Any]) -> bytes:
        self.encoded += message["type"] == 1
        return self.inner.encode(message)

    def decode(self, data: bytes) -> list[dict[str, Any]]:
        return self.inner.decode(data)


class RecordingSink:
    """A transport's outgoing side that keeps what it is given; ``full`` refuses like a stalled client."""

    framed = 0

    def __init__(self, kind: str, full: bool = False) -> None:
        self.kind, self.full = kind, full
        self.pushed: list[bytes] = []
        self.finished: bytes | bool | None = False

    def frame(self, payload: bytes) -> bytes:
        RecordingSink.framed += 1
        return b"<" + self.kind.encode() + b">" + payload

    def push(self, framed: bytes) -> bool:
        if self.full:
            return False
        self.pushed.append(framed)
        return True

    def finish(self, framed: bytes | None) -> None:
        self.finished = framed


def test_fan_out_encodes_once_per_protocol_and_frames_once_per_transport_kind() -> None:
    state = ServiceState(Limits())
    codecs = {"json": CountingCodec("json"), "messagepack": CountingCodec("messagepack")}
    layout = [("json", "ws-text")] * 3 + [("json", "sse")] * 2 + [("messagepack", "ws-binary")] * 3
    conns = []
    for index, (protocol, kind) in enumerate(layout):
        conn = state.create("Chat", f"u{index}", version=1)
        conn.codec, conn.sink = codecs[protocol], RecordingSink(kind, full=index == 1)
        state.go_online(conn)
        conns.append(conn)
    RecordingSink.framed = 0
    delivered = state.deliver(state.hub("CHAT").connections.values(),
                              {"type": 1, "target": "m", "arguments": ["x" * 200]})
    assert delivered == len(layout) - 1
    assert codecs["json"].encoded == 1 and codecs["messagepack"].encoded == 1
    # (json, ws-text), (json, sse), (messagepack, ws-binary), and the stalled client's Close
    assert RecordingSink.framed == 4
    frames = {bytes(conn.sink.pushed[0]) for conn in conns if conn.sink.pushed}
    assert len(frames) == 3  # every target of a kind got the very same bytes
    # the full sink's connection alone is dropped, with a Close message, and counted
    stalled = conns[1]
    assert stalled.closed and b'"type":7' in stalled.sink.finished
    assert all(not conn.closed for conn in conns if conn is not stalled)
    snapshot = state.snapshot()
    assert snapshot["drops"] == 1 and snapshot["messages"]["out"] == len(layout) - 1
    assert snapshot["hubs"]["chat"]["connections"] == len(layout) - 1


def test_service_defaults_are_the_services() -> None:
    """Pings after 15 s idle, clients dropped after 30 s of silence, 15 s handshake, 32 KB messages."""
    limits = Limits()
    assert (limits.keepalive_interval, limits.client_timeout, limits.handshake_timeout) == (15, 30, 15)
    assert (limits.disconnect_timeout, limits.long_poll_timeout) == (15, 90)
    assert limits.max_message_size == 32 * 1024
