"""Outgoing sides of the three transports, each bounded so a slow client is dropped rather than waited for.

WebSockets write finished frames straight into the socket's transport: the event loop flushes them
as the peer reads, and the transport's write buffer *is* the bounded queue (no task per connection,
which keeps idle connections small). Server-Sent Events and Long Polling go through aiohttp
responses, so they get a byte-bounded queue that their request handler drains.
"""

from __future__ import annotations

import asyncio
import struct
from collections import deque

_WS_CLOSE_NORMAL = struct.pack("!BBH", 0x88, 2, 1000)


def ws_frame(opcode: int, payload: bytes) -> bytes:
    """An unmasked, unfragmented RFC 6455 frame (servers never mask): built once for all peers."""
    length = len(payload)
    if length < 126:
        header = struct.pack("!BB", 0x80 | opcode, length)
    elif length < 1 << 16:
        header = struct.pack("!BBH", 0x80 | opcode, 126, length)
    else:
        header = struct.pack("!BBQ", 0x80 | opcode, 127, length)
    return header + payload


class WebSocketSink:
    """Frames written synchronously into the socket transport; over ``limit`` unsent bytes means too slow."""

    def __init__(self, transport: asyncio.Transport, limit: int, close_grace: float = 5.0) -> None:
        self.transport = transport
        self.limit = limit
        self.close_grace = close_grace
        self.binary = False
        self.kind = "ws-text"

    def use_binary(self, binary: bool) -> None:
        self.binary = binary
        self.kind = "ws-binary" if binary else "ws-text"

    def frame(self, payload: bytes) -> bytes:
        return ws_frame(0x2 if self.binary else 0x1, payload)

    def push(self, framed: bytes) -> bool:
        transport = self.transport
        if transport.is_closing():
            return True  # the reader side will notice and clean up; nothing to bound
        buffered = transport.get_write_buffer_size()
        if buffered and buffered + len(framed) > self.limit:
            return False  # an empty buffer takes any one message: the bound is on what piles up
        transport.write(framed)
        return True

    def finish(self, framed: bytes | None) -> None:
        transport = self.transport
        if transport.is_closing():
            return
        transport.write((framed or b"") + _WS_CLOSE_NORMAL)
        transport.close()  # flushes what the peer will still read, then FIN
        # a peer that stopped reading never lets the flush finish
        asyncio.get_running_loop().call_later(self.close_grace, transport.abort)


class QueueSink:
    """A byte-bounded queue drained by a request handler (SSE stream writer, or the pending long poll)."""

    def __init__(self, kind: str, limit: int) -> None:
        self.kind = kind
        self.limit = limit
        self.chunks: deque[bytes] = deque()
        self.size = 0
        self.finished = False
        self.generation = 0  # bumped when a newer long poll replaces the waiting one
        self.event = asyncio.Event()

    def frame(self, payload: bytes) -> bytes:
        if self.kind == "sse":
            lines = payload.split(b"\n")
            return b"".join(b"data: " + line + b"\r\n" for line in lines) + b"\r\n"
        return payload

    def push(self, framed: bytes) -> bool:
        if self.finished:
            return True
        if self.size and self.size + len(framed) > self.limit:
            return False
        self.chunks.append(framed)
        self.size += len(framed)
        self.event.set()
        return True

    def finish(self, framed: bytes | None) -> None:
        if self.finished:
            return
        if framed:
            self.chunks.append(framed)
            self.size += len(framed)
        self.finished = True
        self.event.set()

    def take(self) -> bytes:
        data = b"".join(self.chunks)
        self.chunks.clear()
        self.size = 0
        if not self.finished:
            self.event.clear()
        return data

    def supersede(self) -> int:
        """Wake the waiting poll so it ends (204) in favour of a newer one; returns the new generation."""
        self.generation += 1
        self.event.set()
        return self.generation
