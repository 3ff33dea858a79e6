"""App settings and host.json, read the way Core Tools and the Functions host read them.

Precedence, highest first: explicit overrides (e.g. `python -m emulators --cosmos-port`), process
environment, `local.settings.json` `Values`. The Python worker sees app settings as environment
variables, so `apply_to_environ` exports them for the loaded app, and `restore_environ` undoes it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# ScriptConstants.DefaultMaxRequestBodySize, which Program.cs sets on Kestrel.
DEFAULT_REQUEST_BODY_LIMIT = 104857600


class SettingsError(RuntimeError):
    """A settings file that cannot be used; the message names the file and the problem."""


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except json.JSONDecodeError as e:
        raise SettingsError(f"{path}: not valid JSON ({e.msg} at line {e.lineno})") from None
    if not isinstance(data, dict):
        raise SettingsError(f"{path}: must hold a JSON object")
    return data


def ensure_local_settings(app_dir: Path) -> Path | None:
    """Create `local.settings.json` from the committed sample when missing (it is gitignored,
    because real deployments put connection strings there)."""
    target = app_dir / "local.settings.json"
    sample = app_dir / "local.settings.sample.json"
    if not target.exists() and sample.exists():
        shutil.copyfile(sample, target)
    return target if target.exists() else None


def _case_insensitive_get(mapping: Mapping[str, Any], *keys: str) -> Any:
    node: Any = mapping
    for key in keys:
        if not isinstance(node, Mapping):
            return None
        found = None
        for k, v in node.items():
            if k.lower() == key.lower():
                found = v
                break
        node = found
    return node


@dataclass
class HostSettings:
    app_dir: Path
    host_json: dict[str, Any] = field(default_factory=dict)
    local_values: dict[str, str] = field(default_factory=dict)
    local_host: dict[str, Any] = field(default_factory=dict)
    overrides: dict[str, str] = field(default_factory=dict)
    _saved_env: dict[str, str | None] = field(default_factory=dict, repr=False)

    @classmethod
    def load(cls, app_dir: Path, overrides: Mapping[str, str] | None = None,
             create_local_settings: bool = True) -> HostSettings:
        app_dir = Path(app_dir).resolve()
        host_path = app_dir / "host.json"
        host_json = _read_json(host_path) if host_path.exists() else {"version": "2.0"}
        version = str(host_json.get("version", ""))
        if version != "2.0":
            raise SettingsError(f"{host_path}: \"version\" must be \"2.0\" (Functions v4), got {version!r}")
        local_path = (ensure_local_settings(app_dir) if create_local_settings
                      else app_dir / "local.settings.json")
        values: dict[str, str] = {}
        local_host: dict[str, Any] = {}
        if local_path is not None and local_path.exists():
            local = _read_json(local_path)
            if local.get("IsEncrypted"):
                raise SettingsError(
                    f"{local_path}: encrypted settings are not supported; set IsEncrypted false")
            raw_values = local.get("Values") or {}
            if not isinstance(raw_values, dict):
                raise SettingsError(f"{local_path}: \"Values\" must be an object")
            for k, v in raw_values.items():
                if isinstance(v, (dict, list)):
                    raise SettingsError(f"{local_path}: Values.{k} must be a string, number or boolean")
                values[k] = "" if v is None else (str(v).lower() if isinstance(v, bool) else str(v))
            local_host = local.get("Host") or {}
        return cls(app_dir=app_dir, host_json=host_json, local_values=values, local_host=local_host,
                   overrides=dict(overrides or {}))

    def get(self, name: str) -> str | None:
        """An app setting by name (case-insensitive like Azure's environment on Windows and the
        host's configuration; `:` and `__` are the same separator)."""
        candidates = {name, name.replace(":", "__"), name.replace("__", ":")}
        for source in (self.overrides, os.environ, self.local_values):
            for key, value in source.items():
                if key in candidates or key.lower() in {c.lower() for c in candidates}:
                    return value
        return None

    def all_values(self) -> dict[str, str]:
        merged = dict(self.local_values)
        merged.update({k: v for k, v in os.environ.items() if k in merged})
        merged.update(self.overrides)
        return merged

    def apply_to_environ(self) -> None:
        """Export settings as environment variables for the app (what the worker process sees);
        variables already set in the environment win, except explicit overrides."""
        for key, value in self.local_values.items():
            if key not in os.environ:
                self._saved_env.setdefault(key, None)
                os.environ[key] = value
        for key, value in self.overrides.items():
            self._saved_env.setdefault(key, os.environ.get(key))
            os.environ[key] = value

    def set_override(self, key: str, value: str) -> None:
        """A setting the host itself decides (e.g. WEBSITE_HOSTNAME once the port is bound)."""
        self.overrides[key] = value
        self._saved_env.setdefault(key, os.environ.get(key))
        os.environ[key] = value

    def restore_environ(self) -> None:
        for key, value in self._saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        self._saved_env.clear()

    # --- host.json -----------------------------------------------------------------------------

    def extension(self, *path: str) -> Any:
        return _case_insensitive_get(self.host_json, "extensions", *path)

    @property
    def route_prefix(self) -> str:
        prefix = self.extension("http", "routePrefix")
        return "api" if prefix is None else str(prefix).strip("/")

    @property
    def homepage_disabled(self) -> bool:
        return (self.get("AzureWebJobsDisableHomepage") or "").lower() == "true"

    @property
    def request_body_limit(self) -> int:
        """`FUNCTIONS_REQUEST_BODY_SIZE_LIMIT` in bytes, as HttpRequestBodySizeMiddleware reads it: a value
        that is not an integer (long.TryParse) leaves Kestrel's default, 100 MiB. A negative one, which
        Kestrel would refuse on every request, is refused at start-up instead."""
        raw = (self.get("FUNCTIONS_REQUEST_BODY_SIZE_LIMIT") or "").strip()
        if not re.fullmatch(r"[+-]?\d{1,19}", raw):
            return DEFAULT_REQUEST_BODY_LIMIT
        limit = int(raw)
        if limit < 0:
            raise SettingsError(f"FUNCTIONS_REQUEST_BODY_SIZE_LIMIT must not be negative, got {raw!r}")
        return limit

    @property
    def function_timeout(self) -> float | None:
        """host.json `functionTimeout` (hh:mm:ss) in seconds; None = unbounded."""
        raw = self.host_json.get("functionTimeout")
        if raw in (None, "-1", -1):
            return None
        try:
            parts = [float(p) for p in str(raw).split(":")]
        except ValueError:
            raise SettingsError(f"host.json: functionTimeout {raw!r} is not hh:mm:ss") from None
        seconds = 0.0
        for p in parts:
            seconds = seconds * 60 + p
        return seconds

    @property
    def cors_origins(self) -> list[str]:
        raw = _case_insensitive_get(self.local_host, "CORS") or ""
        return [o.strip() for o in str(raw).split(",") if o.strip()]

    @property
    def local_http_port(self) -> int | None:
        """`Host.LocalHttpPort`: the port Core Tools listens on when not given one."""
        raw = _case_insensitive_get(self.local_host, "LocalHttpPort")
        if raw in (None, ""):
            return None
        problem = f"{self.app_dir / 'local.settings.json'}: Host.LocalHttpPort {raw!r} is not a port number"
        try:
            port = int(raw)
        except (TypeError, ValueError):
            raise SettingsError(problem) from None
        if not 0 < port < 65536:
            raise SettingsError(problem)
        return port

    @property
    def cors_credentials(self) -> bool:
        return bool(_case_insensitive_get(self.local_host, "CORSCredentials"))
