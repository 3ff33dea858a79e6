"""Binding expressions: `%AppSetting%` at start-up, `{token}` per invocation.

`%Name%` is resolved once when the app is indexed (a missing setting stops start-up, as in Azure).
`{token}` is looked up in the invocation's binding data: route values and the JSON body's top-level
properties, `query.x` / `headers.x` (case-insensitive, as the WebJobs SDK does), and the built-ins
`rand-guid` / `sys.randguid` / `datetime` / `sys.utcnow`. A token without a value fails the
invocation with the same message as the WebJobs SDK.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

TOKEN = re.compile(r"\{([^{}]+)\}")
SETTING = re.compile(r"%([^%\s]+)%")


class BindingExpressionError(RuntimeError):
    """An expression that cannot be resolved; fails the invocation (HTTP → 500)."""


def resolve_settings(text: str, get_setting: Callable[[str], str | None], where: str) -> str:
    """Replace every `%Name%` with the app setting; a missing setting is an indexing error."""

    def repl(m: re.Match[str]) -> str:
        value = get_setting(m.group(1))
        if value is None:
            raise BindingExpressionError(f"{where}: '%{m.group(1)}%' does not resolve to a value.")
        return value

    return SETTING.sub(repl, text)


def tokens(template: str) -> list[str]:
    return [m.group(1).strip() for m in TOKEN.finditer(template)]


def _lookup(mapping: Mapping[str, Any], key: str) -> tuple[bool, Any]:
    if key in mapping:
        return True, mapping[key]
    lower = key.lower()
    for k, v in mapping.items():
        if isinstance(k, str) and k.lower() == lower:
            return True, v
    return False, None


def _builtin(name: str) -> tuple[bool, Any]:
    lower = name.lower()
    if lower in ("rand-guid", "sys.randguid"):
        return True, str(uuid.uuid4())
    if lower in ("datetime", "sys.utcnow"):
        return True, datetime.now(UTC).isoformat().replace("+00:00", "Z")
    return False, None


def resolve_token(token: str, data: Mapping[str, Any]) -> Any:
    token = token.strip()
    found, value = _builtin(token)
    if found:
        return value
    parts = token.split(".")
    found, value = _lookup(data, parts[0])
    if not found:
        raise BindingExpressionError(f"No value for named parameter '{parts[0]}'.")
    for part in parts[1:]:
        ok = False
        if isinstance(value, Mapping):
            ok, value = _lookup(value, part)
        if not ok:
            raise BindingExpressionError(f"Error while accessing '{part}': property doesn't exist.")
    return value


def as_text(value: Any) -> str:
    """How the SDK formats a bound value into a string: JSON booleans lower-case, None empty."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        import json

        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return str(value)


def resolve(template: str, data: Mapping[str, Any]) -> str:
    return TOKEN.sub(lambda m: as_text(resolve_token(m.group(1), data)), template)


def sql_parameters(query: str, data: Mapping[str, Any]) -> tuple[str, list[dict[str, Any]]]:
    """The Cosmos DB extension's CosmosDBSqlResolutionPolicy: each distinct `{token}` becomes the
    SQL parameter `@token` (dots and hyphens → `_`) whose value is the token's *string* value, so
    user input never becomes SQL text."""
    params: dict[str, dict[str, Any]] = {}

    def repl(m: re.Match[str]) -> str:
        token = m.group(1).strip()
        name = "@" + token.replace(".", "_").replace("-", "_")
        if name not in params:
            params[name] = {"name": name, "value": as_text(resolve_token(token, data))}
        return name

    return TOKEN.sub(repl, query), list(params.values())
