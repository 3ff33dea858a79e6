"""Partition key values: parsing the JSON header, extracting them from documents, canonical keys."""

from __future__ import annotations

import json
import math
from json.encoder import encode_basestring  # type: ignore[attr-defined]
from typing import Any

from .epk import UNDEFINED, effective_partition_key
from .errors import bad_request


def split_path(path: str) -> list[str]:
    """``/a/b`` or ``/"odd/name"`` → path parts (quoted names may contain ``/``)."""
    if not isinstance(path, str) or not path.startswith("/") or len(path) < 2:
        raise bad_request(
            f"Partition key path '{path}' is invalid: it must start with '/' and name a property."
        )
    parts: list[str] = []
    i, n = 1, len(path)
    while i <= n:
        if i < n and path[i] in "\"'":
            quote = path[i]
            end = path.find(quote, i + 1)
            if end < 0:
                raise bad_request(f"Partition key path '{path}' has an unterminated quote.")
            parts.append(path[i + 1 : end])
            i = end + 1
            if i < n and path[i] != "/":
                raise bad_request(f"Partition key path '{path}' is invalid after a quoted name.")
            i += 1
            continue
        end = path.find("/", i)
        end = n if end < 0 else end
        part = path[i:end]
        if not part:
            raise bad_request(f"Partition key path '{path}' contains an empty segment.")
        parts.append(part)
        i = end + 1
    return parts


def _check_component(value: Any) -> Any:
    if value == {} and isinstance(value, dict):
        return UNDEFINED
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, float)):
        return value
    raise bad_request(
        f"Partition key value must be a string, number, boolean or null; got {json.dumps(value)[:60]}."
    )


def parse_header(raw: str) -> list[Any]:
    """The ``x-ms-documentdb-partitionkey`` header: a JSON array with one component per key path."""
    try:
        value = json.loads(raw)
    except ValueError:
        raise bad_request(
            f"The partition key header 'x-ms-documentdb-partitionkey' value '{raw[:80]}' is not valid JSON.",
            1001,
        ) from None
    if not isinstance(value, list):
        raise bad_request(
            "The partition key header 'x-ms-documentdb-partitionkey' must be a JSON array, e.g. [\"p1\"].",
            1001,
        )
    if not value:
        return [UNDEFINED]
    if len(value) != 1:
        raise bad_request(
            f"The partition key header has {len(value)} components but the container has 1 key path.", 1001
        )
    return [_check_component(v) for v in value]


def from_document(doc: dict[str, Any], parts: list[str]) -> list[Any]:
    node: Any = doc
    for part in parts:
        if not isinstance(node, dict) or part not in node:
            return [UNDEFINED]
        node = node[part]
    if isinstance(node, (dict, list)):
        return [UNDEFINED]  # the service treats a non-primitive key value as undefined
    return [node]


def canonical(components: list[Any]) -> str:
    """Stable text key: 5 and 5.0 are the same partition; undefined is ``{}``. Same text as
    ``json.dumps(..., separators=(",", ":"), ensure_ascii=False)`` with numbers as floats, built without
    the generic encoder because it runs several times per request."""
    parts = []
    for c in components:
        if c is UNDEFINED:
            parts.append("{}")
        elif c is None:
            parts.append("null")
        elif c is True:
            parts.append("true")
        elif c is False:
            parts.append("false")
        elif isinstance(c, str):
            parts.append(encode_basestring(c))
        elif math.isfinite(c):
            parts.append(float.__repr__(float(c)))
        else:
            parts.append(json.dumps(float(c)))
    return "[" + ",".join(parts) + "]"


_EPK_CACHE: dict[str, str] = {}


def epk(components: list[Any]) -> str:
    """Effective partition key, memoised by canonical key (hashing is pure Python and runs per write)."""
    key = canonical(components)
    value = _EPK_CACHE.get(key)
    if value is None:
        if len(_EPK_CACHE) > 100_000:
            _EPK_CACHE.clear()
        value = _EPK_CACHE[key] = effective_partition_key(components)
    return value
