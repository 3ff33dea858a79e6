"""proxies.json in the Functions Proxies schema: load, validate, order by route precedence, expand templates.

Templates (backendUri and override values) may use `%APP_SETTING%`, route parameters `{name}`, and
`{request.method}`, `{request.headers.<name>}`, `{request.querystring.<name>}`; response overrides may also
use `{backend.response.statusCode}` and `{backend.response.headers.<name>}`. Unknown `{...}` expand to ''."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .routes import RouteTemplate

PROXIES_FILE = Path(__file__).resolve().parent.parent / "proxies.json"
_SETTING = re.compile(r"%([A-Za-z0-9_.-]+)%")
_PLACEHOLDER = re.compile(r"\{([^{}]+)\}")
REQUEST_PREFIXES = (
    "backend.request.method",
    "backend.request.headers.",
    "backend.request.querystring.",
    "backend.request.body",
)
RESPONSE_PREFIXES = ("response.statusCode", "response.statusReason", "response.headers.", "response.body")


class ProxyConfigError(ValueError):
    """proxies.json is malformed; raised at load so a bad file fails loudly, not on the first unlucky
    request."""


@dataclass(frozen=True)
class Proxy:
    name: str
    route: RouteTemplate
    methods: frozenset[str] | None  # None: every method
    backend_uri: str | None  # None: answer from responseOverrides alone
    request_overrides: dict[str, Any] = field(default_factory=dict)
    response_overrides: dict[str, Any] = field(default_factory=dict)

    def allows(self, method: str) -> bool:
        return self.methods is None or method in self.methods or (method == "HEAD" and "GET" in self.methods)


def app_settings(text: str, env: Mapping[str, str] | None = None) -> str:
    """`%NAME%` → the app setting; a missing setting is a configuration error, named in the message."""
    env = os.environ if env is None else env

    def one(m: re.Match[str]) -> str:
        if m.group(1) not in env:
            raise ProxyConfigError(f"app setting {m.group(1)} is not set")
        return env[m.group(1)]

    return _SETTING.sub(one, text)


def expand(template: str, lookup: Callable[[str], str | None]) -> str:
    return _PLACEHOLDER.sub(lambda m: lookup(m.group(1).strip()) or "", template)


def has_empty_placeholder(template: str, lookup: Callable[[str], str | None]) -> bool:
    """True when some `{...}` of the template has no value for this request (it expands to "")."""
    return any(not lookup(m.group(1).strip()) for m in _PLACEHOLDER.finditer(template))


def _check_keys(name: str, overrides: Any, prefixes: tuple[str, ...], what: str) -> dict[str, Any]:
    if overrides is None:
        return {}
    if not isinstance(overrides, dict):
        raise ProxyConfigError(f"proxy {name}: {what} must be an object")
    for key in overrides:
        if not key.startswith(prefixes):
            raise ProxyConfigError(f"proxy {name}: unsupported {what} key {key!r}")
    return overrides


def parse(data: Any) -> list[Proxy]:
    if not isinstance(data, dict) or not isinstance(data.get("proxies"), dict):
        raise ProxyConfigError("proxies.json must be an object with a 'proxies' object")
    proxies: list[Proxy] = []
    for name, spec in data["proxies"].items():
        if not isinstance(spec, dict):
            raise ProxyConfigError(f"proxy {name}: must be an object")
        if spec.get("disabled") is True:
            continue
        match = spec.get("matchCondition")
        if not isinstance(match, dict) or not isinstance(match.get("route"), str):
            raise ProxyConfigError(f"proxy {name}: matchCondition.route is required")
        methods = match.get("methods")
        if methods is not None and (
            not isinstance(methods, list) or not all(isinstance(m, str) for m in methods)
        ):
            raise ProxyConfigError(f"proxy {name}: matchCondition.methods must be a list of strings")
        backend = spec.get("backendUri")
        if backend is not None and not isinstance(backend, str):
            raise ProxyConfigError(f"proxy {name}: backendUri must be a string")
        request = _check_keys(name, spec.get("requestOverrides"), REQUEST_PREFIXES, "requestOverrides")
        response = _check_keys(name, spec.get("responseOverrides"), RESPONSE_PREFIXES, "responseOverrides")
        if backend is None and not response:
            raise ProxyConfigError(f"proxy {name}: needs a backendUri or responseOverrides")
        try:
            route = RouteTemplate.parse(match["route"])
        except ValueError as error:
            raise ProxyConfigError(f"proxy {name}: {error}") from None
        proxies.append(
            Proxy(
                name=name,
                route=route,
                methods=frozenset(m.upper() for m in methods) if methods is not None else None,
                backend_uri=backend,
                request_overrides=request,
                response_overrides=response,
            )
        )
    # Stable sort: equal precedence keeps file order, like the order a reader sees.
    return sorted(proxies, key=lambda p: p.route.precedence())


_loaded: dict[Path, tuple[int, list[Proxy]]] = {}


def load(path: Path = PROXIES_FILE) -> list[Proxy]:
    """Parse once per file version: the table is read on the first request, not on every one."""
    stamp = path.stat().st_mtime_ns
    cached = _loaded.get(path)
    if cached is None or cached[0] != stamp:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except ValueError as error:
            raise ProxyConfigError(f"{path.name}: not JSON ({error})") from None
        cached = (stamp, parse(data))
        _loaded[path] = cached
    return cached[1]
