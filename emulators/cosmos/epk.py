"""Effective partition key (EPK) hashing, hash v2, as the service and the SDK compute it.

Why: a partition-key-scoped change feed and ``feed_range`` queries arrive with ``x-ms-start-epk`` /
``x-ms-end-epk`` headers instead of the partition key itself, so the emulator must place every item on
the same 128-bit hash ring the SDK uses (MurmurHash3 x64 128, seed 0, over the binary-encoded key).
"""

from __future__ import annotations

import struct
from typing import Any

_MASK = (1 << 64) - 1
_C1 = 0x87C37B91114253D5
_C2 = 0x4CF5AD432745937F


def _rotl(x: int, r: int) -> int:
    return ((x << r) | (x >> (64 - r))) & _MASK


def _fmix(k: int) -> int:
    k ^= k >> 33
    k = (k * 0xFF51AFD7ED558CCD) & _MASK
    k ^= k >> 33
    k = (k * 0xC4CEB9FE1A85EC53) & _MASK
    k ^= k >> 33
    return k


def murmur3_x64_128(data: bytes, seed: int = 0) -> tuple[int, int]:
    """Return (h1, h2) of MurmurHash3 x64 128 (the public-domain reference algorithm)."""
    h1 = h2 = seed & _MASK
    n = len(data)
    nblocks = n // 16
    for i in range(nblocks):
        k1, k2 = struct.unpack_from("<QQ", data, i * 16)
        k1 = (k1 * _C1) & _MASK
        k1 = _rotl(k1, 31)
        k1 = (k1 * _C2) & _MASK
        h1 ^= k1
        h1 = _rotl(h1, 27)
        h1 = (h1 + h2) & _MASK
        h1 = (h1 * 5 + 0x52DCE729) & _MASK
        k2 = (k2 * _C2) & _MASK
        k2 = _rotl(k2, 33)
        k2 = (k2 * _C1) & _MASK
        h2 ^= k2
        h2 = _rotl(h2, 31)
        h2 = (h2 + h1) & _MASK
        h2 = (h2 * 5 + 0x38495AB5) & _MASK
    tail = data[nblocks * 16 :]
    k1 = k2 = 0
    for i in range(len(tail) - 1, 7, -1):
        k2 ^= tail[i] << ((i - 8) * 8)
    if len(tail) > 8:
        k2 = (k2 * _C2) & _MASK
        k2 = _rotl(k2, 33)
        k2 = (k2 * _C1) & _MASK
        h2 ^= k2
    for i in range(min(len(tail), 8) - 1, -1, -1):
        k1 ^= tail[i] << (i * 8)
    if tail:
        k1 = (k1 * _C1) & _MASK
        k1 = _rotl(k1, 31)
        k1 = (k1 * _C2) & _MASK
        h1 ^= k1
    h1 ^= n
    h2 ^= n
    h1 = (h1 + h2) & _MASK
    h2 = (h2 + h1) & _MASK
    h1 = _fmix(h1)
    h2 = _fmix(h2)
    h1 = (h1 + h2) & _MASK
    h2 = (h2 + h1) & _MASK
    return h1, h2


class Undefined:
    """Marker for a partition key component that is absent from the document (``[{}]`` on the wire)."""

    _instance: Undefined | None = None

    def __new__(cls) -> Undefined:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "Undefined"


UNDEFINED = Undefined()


def _encode_component(value: Any) -> bytes:
    if value is True:
        return b"\x03"
    if value is False:
        return b"\x02"
    if value is None:
        return b"\x01"
    if value is UNDEFINED:
        return b"\x00"
    if isinstance(value, (int, float)):
        return b"\x05" + struct.pack("<d", float(value))
    if isinstance(value, str):
        return b"\x08" + value.encode("utf-8") + b"\xff"
    raise ValueError(f"partition key component of type {type(value).__name__} is not supported")


def effective_partition_key(components: list[Any]) -> str:
    """Hex EPK of a (single-path, hash v2) partition key value, upper case, 32 characters."""
    data = b"".join(_encode_component(c) for c in components)
    h1, h2 = murmur3_x64_128(data)
    raw = bytearray(h1.to_bytes(8, "little") + h2.to_bytes(8, "little"))
    raw.reverse()
    raw[0] &= 0x3F
    return raw.hex().upper()
