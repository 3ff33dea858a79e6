"""Built-in scalar functions of the query language (the subset applications use)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from .values import UNDEF, equals, is_number, normalise_number


def _s(*vals: Any) -> bool:
    return all(isinstance(v, str) for v in vals)


def _n(*vals: Any) -> bool:
    return all(is_number(v) for v in vals)


def _ignore_case(args: list[Any], n: int) -> Any:
    if len(args) <= n:
        return False
    flag = args[n]
    return flag if isinstance(flag, bool) else UNDEF


def _startswith(a: list[Any]) -> Any:
    ic = _ignore_case(a, 2)
    if not _s(a[0], a[1]) or ic is UNDEF:
        return UNDEF
    return a[0].lower().startswith(a[1].lower()) if ic else a[0].startswith(a[1])


def _endswith(a: list[Any]) -> Any:
    ic = _ignore_case(a, 2)
    if not _s(a[0], a[1]) or ic is UNDEF:
        return UNDEF
    return a[0].lower().endswith(a[1].lower()) if ic else a[0].endswith(a[1])


def _contains(a: list[Any]) -> Any:
    ic = _ignore_case(a, 2)
    if not _s(a[0], a[1]) or ic is UNDEF:
        return UNDEF
    return a[1].lower() in a[0].lower() if ic else a[1] in a[0]


def _array_contains(a: list[Any]) -> Any:
    arr, needle = a[0], a[1]
    partial = a[2] if len(a) > 2 else False
    if not isinstance(arr, list) or not isinstance(partial, bool):
        return UNDEF
    for item in arr:
        if partial and isinstance(item, dict) and isinstance(needle, dict):
            if all(k in item and equals(item[k], v) is True for k, v in needle.items()):
                return True
        elif equals(item, needle) is True:
            return True
    return False


def _substring(a: list[Any]) -> Any:
    if not (isinstance(a[0], str) and _n(a[1], a[2])):
        return UNDEF
    start, length = int(a[1]), int(a[2])
    start = max(start, 0)
    return a[0][start : start + max(length, 0)]


def _index_of(a: list[Any]) -> Any:
    if not _s(a[0], a[1]):
        return UNDEF
    start = int(a[2]) if len(a) > 2 and is_number(a[2]) else 0
    return a[0].find(a[1], start)


def _round(v: Any) -> Any:
    if not is_number(v):
        return UNDEF
    return math.floor(v + 0.5) if v >= 0 else -math.floor(-v + 0.5)


def _to_string(v: Any) -> Any:
    import json

    if v is UNDEF:
        return UNDEF
    if isinstance(v, str):
        return v
    return json.dumps(normalise_number(v), separators=(",", ":"), ensure_ascii=False)


def _type_check(pred: Callable[[Any], bool]) -> Callable[[list[Any]], Any]:
    return lambda a: pred(a[0])


# name → (min args, max args, implementation over evaluated args)
FUNCTIONS: dict[str, tuple[int, int, Callable[[list[Any]], Any]]] = {
    "STARTSWITH": (2, 3, _startswith),
    "ENDSWITH": (2, 3, _endswith),
    "CONTAINS": (2, 3, _contains),
    "LOWER": (1, 1, lambda a: a[0].lower() if _s(a[0]) else UNDEF),
    "UPPER": (1, 1, lambda a: a[0].upper() if _s(a[0]) else UNDEF),
    "LENGTH": (1, 1, lambda a: len(a[0]) if _s(a[0]) else UNDEF),
    "TRIM": (1, 1, lambda a: a[0].strip(" ") if _s(a[0]) else UNDEF),
    "LTRIM": (1, 1, lambda a: a[0].lstrip(" ") if _s(a[0]) else UNDEF),
    "RTRIM": (1, 1, lambda a: a[0].rstrip(" ") if _s(a[0]) else UNDEF),
    "CONCAT": (2, 64, lambda a: "".join(a) if _s(*a) else UNDEF),
    "SUBSTRING": (3, 3, _substring),
    "INDEX_OF": (2, 3, _index_of),
    "LEFT": (2, 2, lambda a: a[0][: max(int(a[1]), 0)] if isinstance(a[0], str) and _n(a[1]) else UNDEF),
    "RIGHT": (
        2,
        2,
        lambda a: (
            (a[0][-int(a[1]) :] if int(a[1]) > 0 else "") if isinstance(a[0], str) and _n(a[1]) else UNDEF
        ),
    ),
    "REPLACE": (3, 3, lambda a: a[0].replace(a[1], a[2]) if _s(*a) else UNDEF),
    "REVERSE": (1, 1, lambda a: a[0][::-1] if _s(a[0]) else UNDEF),
    "TOSTRING": (1, 1, lambda a: _to_string(a[0])),
    "IS_DEFINED": (1, 1, lambda a: a[0] is not UNDEF),
    "IS_NULL": (1, 1, _type_check(lambda v: v is None)),
    "IS_BOOL": (1, 1, _type_check(lambda v: isinstance(v, bool))),
    "IS_NUMBER": (1, 1, _type_check(is_number)),
    "IS_STRING": (1, 1, _type_check(lambda v: isinstance(v, str))),
    "IS_ARRAY": (1, 1, _type_check(lambda v: isinstance(v, list))),
    "IS_OBJECT": (1, 1, _type_check(lambda v: isinstance(v, dict))),
    "IS_PRIMITIVE": (1, 1, _type_check(lambda v: v is None or isinstance(v, (bool, int, float, str)))),
    "ARRAY_CONTAINS": (2, 3, _array_contains),
    "ARRAY_LENGTH": (1, 1, lambda a: len(a[0]) if isinstance(a[0], list) else UNDEF),
    "ABS": (1, 1, lambda a: abs(a[0]) if _n(a[0]) else UNDEF),
    "FLOOR": (1, 1, lambda a: math.floor(a[0]) if _n(a[0]) else UNDEF),
    "CEILING": (1, 1, lambda a: math.ceil(a[0]) if _n(a[0]) else UNDEF),
    "ROUND": (1, 1, lambda a: _round(a[0])),
}

AGGREGATES = ("COUNT", "SUM", "MIN", "MAX", "AVG")
