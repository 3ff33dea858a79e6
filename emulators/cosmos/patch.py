"""Partial document update (``PATCH``): add / set / replace / remove / incr / move, JSON-Pointer paths.

Why its own module: the rules differ subtly per operation (arrays vs objects, "must exist" or not) and
a failed operation must leave the document untouched, so patches are applied to a deep copy.
"""

from __future__ import annotations

import copy
from typing import Any

from .errors import bad_request

MAX_OPERATIONS = 10
_OPS = ("add", "set", "replace", "remove", "incr", "move")


def _pointer(path: Any) -> list[str]:
    if not isinstance(path, str) or not path.startswith("/") or path == "/":
        raise bad_request(f"Patch path '{path}' is invalid: it must be a JSON pointer such as '/a/b'.")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _parent(doc: Any, parts: list[str], path: str) -> Any:
    node = doc
    for part in parts[:-1]:
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            raise bad_request(f"Patch path '{path}': the parent of the target does not exist.")
    if not isinstance(node, (dict, list)):
        raise bad_request(f"Patch path '{path}': the parent of the target is not an object or array.")
    return node


def _index(node: list[Any], key: str, path: str, allow_end: bool) -> int:
    if key == "-" and allow_end:
        return len(node)
    if not key.isdigit():
        raise bad_request(f"Patch path '{path}': '{key}' is not a valid array index.")
    i = int(key)
    if i > len(node) or (i == len(node) and not allow_end):
        raise bad_request(f"Patch path '{path}': index {i} is out of range for an array of {len(node)}.")
    return i


def _get(doc: Any, path: str) -> tuple[Any, str | int]:
    parts = _pointer(path)
    parent = _parent(doc, parts, path)
    key = parts[-1]
    if isinstance(parent, dict):
        if key not in parent:
            raise bad_request(f"Patch path '{path}' does not exist in the document.")
        return parent, key
    i = _index(parent, key, path, allow_end=False)
    return parent, i


def apply_patch(doc: dict[str, Any], operations: list[Any], protected: set[str]) -> dict[str, Any]:
    if not operations:
        raise bad_request("The patch 'operations' array must not be empty.")
    if len(operations) > MAX_OPERATIONS:
        raise bad_request(f"A patch may contain at most {MAX_OPERATIONS} operations; got {len(operations)}.")
    out = copy.deepcopy(doc)
    for n, op in enumerate(operations):
        if not isinstance(op, dict):
            raise bad_request(f"Patch operation #{n} must be an object.")
        kind = op.get("op")
        if kind not in _OPS:
            raise bad_request(f"Patch operation #{n}: 'op' must be one of {', '.join(_OPS)}; got '{kind}'.")
        path = op.get("path")
        parts = _pointer(path)
        if path in protected or parts[0].startswith("_"):
            raise bad_request(
                f"Patch operation #{n}: path '{path}' (id, partition key or system property) "
                "cannot be changed."
            )
        if kind in ("add", "set", "replace", "incr") and "value" not in op:
            raise bad_request(f"Patch operation #{n} ('{kind}') requires a 'value'.")
        value = op.get("value")
        if kind == "remove":
            parent, key = _get(out, path)
            del parent[key]
        elif kind == "replace":
            parent, key = _get(out, path)
            parent[key] = value
        elif kind in ("add", "set"):
            parent = _parent(out, parts, path)
            key = parts[-1]
            if isinstance(parent, dict):
                parent[key] = value
            elif kind == "add":
                parent.insert(_index(parent, key, path, allow_end=True), value)
            else:
                i = _index(parent, key, path, allow_end=True)
                if i == len(parent):
                    parent.append(value)
                else:
                    parent[i] = value
        elif kind == "incr":
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise bad_request(f"Patch operation #{n} ('incr') requires a numeric 'value'.")
            parent = _parent(out, parts, path)
            key = parts[-1]
            if isinstance(parent, dict):
                current = parent.get(key, 0)
                if isinstance(current, bool) or not isinstance(current, (int, float)):
                    raise bad_request(
                        f"Patch operation #{n} ('incr'): the value at '{path}' is not a number."
                    )
                parent[key] = current + value
            else:
                i = _index(parent, key, path, allow_end=False)
                current = parent[i]
                if isinstance(current, bool) or not isinstance(current, (int, float)):
                    raise bad_request(
                        f"Patch operation #{n} ('incr'): the value at '{path}' is not a number."
                    )
                parent[i] = current + value
        else:  # move
            source = op.get("from")
            src_parent, src_key = _get(out, source)
            if isinstance(path, str) and path.startswith(str(source) + "/"):
                raise bad_request(f"Patch operation #{n} ('move'): cannot move '{source}' into itself.")
            moved = src_parent[src_key]
            del src_parent[src_key]
            parent = _parent(out, parts, path)
            if isinstance(parent, dict):
                parent[parts[-1]] = moved
            else:
                parent.insert(_index(parent, parts[-1], path, allow_end=True), moved)
    return out
