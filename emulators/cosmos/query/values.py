"""Cosmos value semantics: undefined vs null, type ranks, comparison and equality across JSON types.

Why: Cosmos differs from SQL and from Python here — a comparison across types is *undefined* (not false),
``undefined`` is not ``null``, and ORDER BY / MIN / MAX use a fixed cross-type order.
"""

from __future__ import annotations

import json
from typing import Any


class _Undefined:
    __slots__ = ()

    def __repr__(self) -> str:
        return "undefined"

    def __bool__(self) -> bool:
        return False


UNDEF: Any = _Undefined()

# Ascending cross-type order used by ORDER BY: undefined, null, boolean, number, string, array, object.
RANK_UNDEFINED, RANK_NULL, RANK_BOOL, RANK_NUMBER, RANK_STRING, RANK_ARRAY, RANK_OBJECT = range(7)


def rank(v: Any) -> int:
    if v is UNDEF:
        return RANK_UNDEFINED
    if v is None:
        return RANK_NULL
    if isinstance(v, bool):
        return RANK_BOOL
    if isinstance(v, (int, float)):
        return RANK_NUMBER
    if isinstance(v, str):
        return RANK_STRING
    if isinstance(v, list):
        return RANK_ARRAY
    return RANK_OBJECT


def is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def canonical(v: Any) -> str:
    """Text form used for DISTINCT and for ordering arrays/objects among themselves."""
    return json.dumps(v, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def equals(a: Any, b: Any) -> Any:
    """``=``: true/false for two values of the same JSON type, undefined otherwise."""
    ra, rb = rank(a), rank(b)
    if ra == RANK_UNDEFINED or rb == RANK_UNDEFINED or ra != rb:
        return UNDEF
    if ra in (RANK_ARRAY, RANK_OBJECT):
        return canonical(a) == canonical(b)
    return a == b


def compare(a: Any, b: Any) -> Any:
    """-1/0/1 for two comparable values of the same primitive type, UNDEF otherwise (``<``, ``>``…)."""
    ra, rb = rank(a), rank(b)
    if ra != rb or ra in (RANK_UNDEFINED, RANK_ARRAY, RANK_OBJECT):
        return UNDEF
    if a == b:
        return 0
    return -1 if a < b else 1


def sort_key(v: Any) -> tuple[int, Any]:
    """Total order across types, for ORDER BY, MIN and MAX."""
    r = rank(v)
    if r in (RANK_UNDEFINED, RANK_NULL):
        return (r, 0)
    if r in (RANK_ARRAY, RANK_OBJECT):
        return (r, canonical(v))
    if r == RANK_BOOL:
        return (r, int(v))
    return (r, v)


def normalise_number(v: Any) -> Any:
    """Cosmos numbers are IEEE doubles printed without a trailing .0."""
    if isinstance(v, float) and v.is_integer() and abs(v) < 2**53:
        return int(v)
    return v
