"""SignalR hub protocol codecs: the JSON and MessagePack wire formats, and the handshake.

Kept free of any I/O so the framing rules (record separators, VarInt prefixes, message shapes)
can be tested byte by byte against the spec (dotnet/aspnetcore src/SignalR/docs/specs/HubProtocol.md).
Messages are plain dicts in the JSON protocol's shape (``{"type": 1, "target": ..., ...}``);
the MessagePack codec maps them to and from the positional arrays of that protocol.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Protocol

import msgpack

RECORD_SEPARATOR = b"\x1e"

INVOCATION = 1
STREAM_ITEM = 2
COMPLETION = 3
STREAM_INVOCATION = 4
CANCEL_INVOCATION = 5
PING = 6
CLOSE = 7
ACK = 8
SEQUENCE = 9

MAX_HANDSHAKE_VERSION = 2  # the server's IsVersionSupported(v) => v <= 2


class ProtocolError(ValueError):
    """The peer sent bytes that are not a valid hub message; the connection must be closed with this text."""


class HubCodec(Protocol):
    """What the transports and the hub need from a hub protocol."""

    name: str
    binary: bool

    def encode(self, message: dict[str, Any]) -> bytes: ...

    def decode(self, data: bytes) -> list[dict[str, Any]]: ...


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


class JsonCodec:
    """JSON records, each terminated by 0x1E; several may share one frame but a record never spans two."""

    name = "json"
    binary = False

    def encode(self, message: dict[str, Any]) -> bytes:
        return _dumps(message) + RECORD_SEPARATOR

    def decode(self, data: bytes) -> list[dict[str, Any]]:
        if not data:
            return []
        if not data.endswith(RECORD_SEPARATOR):
            raise ProtocolError("Message is incomplete: a JSON hub message must end with the separator 0x1E.")
        messages = []
        for record in data[:-1].split(RECORD_SEPARATOR):
            try:
                message = json.loads(record)
            except (ValueError, UnicodeDecodeError) as exc:
                raise ProtocolError(f"Invalid JSON hub message: {exc}.") from None
            messages.append(_validate(message))
        return messages


def _validate(message: Any) -> dict[str, Any]:
    """Check the fields the server relies on, as the server's JsonHubProtocol does."""
    if not isinstance(message, dict):
        raise ProtocolError("Hub message must be a JSON object.")
    kind = message.get("type")
    if not isinstance(kind, int) or isinstance(kind, bool):
        raise ProtocolError("Missing required property 'type'.")
    if kind in (INVOCATION, STREAM_INVOCATION):
        if not isinstance(message.get("target"), str):
            raise ProtocolError("Missing required property 'target'.")
        if not isinstance(message.get("arguments", []), list):
            raise ProtocolError("Expected 'arguments' to be of type Array.")
        invocation_id = message.get("invocationId")
        if kind == STREAM_INVOCATION and not isinstance(invocation_id, str):
            raise ProtocolError("Missing required property 'invocationId'.")
        if invocation_id is not None and not isinstance(invocation_id, str):
            raise ProtocolError("Expected 'invocationId' to be of type String.")
    elif kind in (STREAM_ITEM, COMPLETION, CANCEL_INVOCATION):
        if not isinstance(message.get("invocationId"), str):
            raise ProtocolError("Missing required property 'invocationId'.")
    elif kind in (PING, CLOSE, ACK, SEQUENCE):
        pass
    else:
        raise ProtocolError(f"Unknown message type '{kind}'.")
    return message


def encode_varint(value: int) -> bytes:
    """The MessagePack protocol's length prefix: 7 bits per byte, least significant group first."""
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _read_varint(data: bytes, offset: int) -> tuple[int, int]:
    length = 0
    for index in range(5):
        if offset + index >= len(data):
            raise ProtocolError("Message is incomplete: truncated MessagePack length prefix.")
        byte = data[offset + index]
        length |= (byte & 0x7F) << (7 * index)
        if not byte & 0x80:
            return length, offset + index + 1
    raise ProtocolError("Messages over 2GB are not supported: MessagePack length prefix longer than 5 bytes.")


class MessagePackCodec:
    """VarInt-prefixed MessagePack arrays (``[type, headers, ...]``) on binary frames."""

    name = "messagepack"
    binary = True

    def encode(self, message: dict[str, Any]) -> bytes:
        body = msgpack.packb(self._to_array(message), use_bin_type=True)
        return encode_varint(len(body)) + body

    @staticmethod
    def _to_array(m: dict[str, Any]) -> list[Any]:
        kind = m["type"]
        headers = m.get("headers") or {}
        if kind == INVOCATION:
            return [kind, headers, m.get("invocationId"), m["target"], m.get("arguments", []),
                    m.get("streamIds") or []]
        if kind == STREAM_ITEM:
            return [kind, headers, m["invocationId"], m.get("item")]
        if kind == COMPLETION:
            if m.get("error") is not None:
                return [kind, headers, m["invocationId"], 1, m["error"]]
            if "result" in m:
                return [kind, headers, m["invocationId"], 3, m["result"]]
            return [kind, headers, m["invocationId"], 2]
        if kind == PING:
            return [kind]
        if kind == CLOSE:
            return [kind, m.get("error"), bool(m.get("allowReconnect", False))]
        if kind in (ACK, SEQUENCE):
            return [kind, m["sequenceId"]]
        raise ValueError(f"cannot encode message type {kind}")

    def decode(self, data: bytes) -> list[dict[str, Any]]:
        messages = []
        offset = 0
        while offset < len(data):
            length, start = _read_varint(data, offset)
            end = start + length
            if end > len(data):
                raise ProtocolError("Message is incomplete: MessagePack body shorter than its length prefix.")
            try:
                array = msgpack.unpackb(data[start:end], raw=False, strict_map_key=False)
            except Exception as exc:  # msgpack raises several unrelated types
                raise ProtocolError(f"Invalid MessagePack hub message: {exc}.") from None
            messages.append(self._from_array(array))
            offset = end
        return messages

    @staticmethod
    def _from_array(a: Any) -> dict[str, Any]:
        if not isinstance(a, list) or not a or not isinstance(a[0], int):
            raise ProtocolError("Invalid MessagePack hub message: expected an array starting with the type.")
        kind = a[0]
        try:
            if kind in (INVOCATION, STREAM_INVOCATION):
                # signalrcore sends the 5-element form without stream ids.
                message = {"type": kind, "headers": a[1], "invocationId": a[2], "target": a[3],
                           "arguments": a[4]}
                if len(a) > 5:
                    message["streamIds"] = a[5]
            elif kind == STREAM_ITEM:
                message = {"type": kind, "headers": a[1], "invocationId": a[2], "item": a[3]}
            elif kind == COMPLETION:
                message = {"type": kind, "headers": a[1], "invocationId": a[2]}
                if a[3] == 1:
                    message["error"] = a[4]
                elif a[3] == 3:
                    message["result"] = a[4]
            elif kind == CANCEL_INVOCATION:
                message = {"type": kind, "headers": a[1], "invocationId": a[2]}
            elif kind == PING:
                message = {"type": kind}
            elif kind == CLOSE:
                message = {"type": kind, "error": a[1] if len(a) > 1 else None}
            elif kind in (ACK, SEQUENCE):
                message = {"type": kind, "sequenceId": a[1]}
            else:
                raise ProtocolError(f"Unknown message type '{kind}'.")
        except IndexError:
            raise ProtocolError(f"Invalid MessagePack hub message: too few fields for type {kind}.") from None
        return _validate(message)


CODECS: dict[str, HubCodec] = {"json": JsonCodec(), "messagepack": MessagePackCodec()}


@dataclass(frozen=True)
class Handshake:
    codec: HubCodec
    version: int


def split_handshake(data: bytes) -> tuple[bytes, bytes] | None:
    """Split the JSON handshake record from what follows it in the same frame; None if incomplete."""
    index = data.find(RECORD_SEPARATOR)
    if index < 0:
        return None
    return data[:index], data[index + 1:]


def parse_handshake(record: bytes, binary_transport: bool) -> Handshake:
    """Validate a handshake request; the error texts are the ones ASP.NET Core SignalR sends."""
    try:
        request = json.loads(record)
    except (ValueError, UnicodeDecodeError):
        raise ProtocolError("Handshake request is not valid JSON.") from None
    if not isinstance(request, dict):
        raise ProtocolError("Handshake request must be a JSON object.")
    name = request.get("protocol")
    version = request.get("version")
    if not isinstance(name, str):
        raise ProtocolError("Missing required property 'protocol'.")
    if not isinstance(version, int) or isinstance(version, bool):
        raise ProtocolError("Missing required property 'version'.")
    codec = CODECS.get(name)
    if codec is None:
        raise ProtocolError(f"Requested protocol '{name}' is not available.")
    if version > MAX_HANDSHAKE_VERSION or version < 0:
        raise ProtocolError(f"The server does not support version {version} of the '{name}' protocol.")
    if codec.binary and not binary_transport:
        raise ProtocolError(f"Cannot use the '{name}' protocol on the current transport. "
                            "The transport does not support 'Binary' transfer format.")
    return Handshake(codec, version)


def handshake_response(error: str | None = None) -> bytes:
    """``{}`` on success, the JSON error object otherwise: JSON text plus 0x1E, whatever the protocol."""
    return (_dumps({"error": error}) if error else b"{}") + RECORD_SEPARATOR


def invocation(target: str, arguments: list[Any]) -> dict[str, Any]:
    return {"type": INVOCATION, "target": target, "arguments": arguments}


def close_message(error: str | None = None, allow_reconnect: bool = False) -> dict[str, Any]:
    message: dict[str, Any] = {"type": CLOSE}
    if error:
        message["error"] = error
    if allow_reconnect:
        message["allowReconnect"] = True
    return message


PING_MESSAGE: dict[str, Any] = {"type": PING}
