"""Indexing a Python v2 Function App the way the Python worker does.

The script (`function_app.py`, or `PYTHON_SCRIPT_FILE_NAME`) is imported with the app directory on
`sys.path`; exactly one `FunctionRegister` (FunctionApp/AsgiFunctionApp/...) must be defined at module
level; its `get_functions()` yields each function's bindings through the same dict representation the
worker sends to the host (`get_dict_repr`). Nothing here keeps a second list of routes or bindings.
"""

from __future__ import annotations

import importlib.util
import inspect
import json
import logging
import sys
import time
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import azure.functions as func
from azure.functions import meta

from .expressions import BindingExpressionError, resolve_settings
from .retry import EXPONENTIAL_BACKOFF, FIXED_DELAY, RetryPolicy

# What this host can run, by binding type and allowed directions.
SUPPORTED: dict[str, set[str]] = {
    "httpTrigger": {"in"},
    "http": {"out"},
    "cosmosDBTrigger": {"in"},
    "cosmosDB": {"in", "out"},
    "signalRConnectionInfo": {"in"},
    "signalR": {"out"},
}
TRIGGERS = {"httpTrigger", "cosmosDBTrigger"}
# Properties that name settings (or are settings themselves) rather than binding expressions.
SETTING_NAME_PROPS = {"connection", "connectionStringSetting", "connectionstringsetting"}
log = logging.getLogger("emulators.functions")


class FunctionLoadError(RuntimeError):
    """Start-up refused: the message names the function and, where relevant, the binding."""


@dataclass
class BindingSpec:
    name: str
    type: str
    direction: str  # "in" | "out" | "inout"
    props: dict[str, Any]

    def get(self, key: str, default: Any = None) -> Any:
        for k, v in self.props.items():
            if k.lower() == key.lower():
                return v
        return default


@dataclass
class FunctionDef:
    name: str
    func: Callable[..., Any]
    is_async: bool
    trigger: BindingSpec
    inputs: list[BindingSpec] = field(default_factory=list)
    outputs: list[BindingSpec] = field(default_factory=list)
    return_binding: BindingSpec | None = None
    annotations: dict[str, Any] = field(default_factory=dict)
    context_param: str | None = None
    return_annotation: Any = None
    # HTTP streams (azurefunctions-extensions-http-fastapi): the trigger parameter is a FastAPI/Starlette
    # Request and the return value a Starlette Response, passed through as objects, not TypedData.
    http_streams: bool = False
    retry: RetryPolicy | None = None  # `@app.retry`, for a trigger that supports retries (see retry_policy)

    def out_type(self, binding: BindingSpec) -> Any:
        """T of a `func.Out[T]` parameter, or None when unannotated."""
        anno = self.annotations.get(binding.name)
        if anno is None:
            return None
        args = typing.get_args(anno)
        return args[0] if args else None


class ImportedScript:
    """The imported app module, and how to take it out of `sys.path`/`sys.modules` again when the
    host stops (tests load several apps into one process)."""

    def __init__(self, module: ModuleType, name: str, previous: ModuleType | None, added_path: str | None):
        self.module = module
        self._name = name
        self._previous = previous
        self._added_path = added_path

    def unload(self) -> None:
        if sys.modules.get(self._name) is self.module:
            if self._previous is not None:
                sys.modules[self._name] = self._previous
            else:
                sys.modules.pop(self._name, None)
        if self._added_path and self._added_path in sys.path:
            sys.path.remove(self._added_path)


def import_script(app_dir: Path, script: str = "function_app.py") -> ImportedScript:
    """Import the app script as the worker does: module name = file stem, app dir first on sys.path."""
    app_dir = Path(app_dir).resolve()
    path = app_dir / script
    if not path.exists():
        raise FunctionLoadError(f"{path} not found: the Python v2 model needs {script} in the app directory")
    added = None
    if str(app_dir) not in sys.path:
        sys.path.insert(0, str(app_dir))
        added = str(app_dir)
    name = path.stem
    previous = sys.modules.get(name)
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    imported = ImportedScript(module, name, previous, added)
    try:
        spec.loader.exec_module(module)
    except Exception as e:
        imported.unload()
        raise FunctionLoadError(f"importing {path} failed: {type(e).__name__}: {e}") from e
    return imported


def find_app(module: ModuleType) -> func.FunctionRegister:
    apps = [getattr(module, n) for n in dir(module) if isinstance(getattr(module, n), func.FunctionRegister)]
    if not apps:
        raise FunctionLoadError(f"no FunctionApp instance found in {module.__file__}")
    if len({id(a) for a in apps}) > 1:
        raise FunctionLoadError(f"more than one FunctionApp instance defined in {module.__file__}")
    return apps[0]


def _direction(raw: Any) -> str:
    text = str(raw).lower()
    return {"0": "in", "1": "out", "2": "inout"}.get(text, text)


def _type_hints(fn: Callable[..., Any]) -> dict[str, Any]:
    try:
        return typing.get_type_hints(fn)
    except Exception:
        return {k: v for k, v in getattr(fn, "__annotations__", {}).items() if not isinstance(v, str)}


def _converter(binding_type: str) -> Any:
    return meta.get_binding_registry().get(binding_type)


def _check_annotations(fd: FunctionDef, bindings: list[BindingSpec]) -> None:
    """The worker refuses a function whose annotations its converters cannot serve; so do we,
    so that an app that starts here also starts in Azure."""
    for b in bindings:
        anno = fd.annotations.get(b.name)
        if anno is None or b.name == "$return" or (fd.http_streams and b is fd.trigger):
            continue
        conv = _converter(b.type)
        origin = typing.get_origin(anno)
        is_out = isinstance(origin, type) and issubclass(origin, func.Out)
        if b.direction == "out":
            if not is_out:
                raise FunctionLoadError(
                    f"function {fd.name!r}: binding {b.name!r} is an output binding; its parameter must be "
                    f"annotated func.Out[...], not {anno!r}")
            inner = fd.out_type(b)
            ok = True
            if inner is not None and isinstance(inner, type):
                ok = (conv.check_output_type_annotation(inner) if conv is not None
                      else issubclass(inner, (str, bytes, bytearray)))
            if not ok:
                raise FunctionLoadError(
                    f"function {fd.name!r}: type of binding {b.name!r} ({b.type}) does not match its "
                    f"Python annotation {anno!r}")
        else:
            if is_out:
                raise FunctionLoadError(
                    f"function {fd.name!r}: binding {b.name!r} is an input; func.Out is for outputs")
            if isinstance(anno, type):
                ok = (conv.check_input_type_annotation(anno) if conv is not None
                      else issubclass(anno, (str, bytes)))
                if not ok:
                    raise FunctionLoadError(
                        f"function {fd.name!r}: type of binding {b.name!r} ({b.type}) does not match its "
                        f"Python annotation {anno.__name__}")


def _resolve_props(props: dict[str, Any], get_setting: Callable[[str], str | None],
                   where: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in props.items():
        if isinstance(v, str) and k not in SETTING_NAME_PROPS:
            v = resolve_settings(v, get_setting, f"{where} property {k!r}")
        out[k] = v
    return out


def index_app(app: func.FunctionRegister, get_setting: Callable[[str], str | None]) -> list[FunctionDef]:
    try:
        functions = app.get_functions()
    except Exception as e:
        raise FunctionLoadError(f"indexing the FunctionApp failed: {e}") from e
    defs: list[FunctionDef] = []
    seen: set[str] = set()
    for f in functions:
        name = f.get_function_name()
        if name.lower() in seen:
            raise FunctionLoadError(
                f"The function or proxy name '{name}' must be unique within the function app.")
        seen.add(name.lower())
        user_fn = f.get_user_function()
        bindings: list[BindingSpec] = []
        for raw in f.get_dict_repr()["bindings"]:
            props = {k: v for k, v in raw.items() if k not in ("name", "type", "direction")}
            b = BindingSpec(name=raw["name"], type=raw["type"], direction=_direction(raw.get("direction")),
                            props=props)
            allowed = SUPPORTED.get(b.type)
            if allowed is None:
                raise FunctionLoadError(
                    f"function {name!r}: binding {b.name!r} has type {b.type!r}, which this host does not "
                    f"support (supported: {', '.join(sorted(SUPPORTED))})")
            if b.direction not in allowed:
                raise FunctionLoadError(
                    f"function {name!r}: binding {b.name!r} of type {b.type!r} cannot have direction "
                    f"{b.direction!r}")
            try:
                b.props = _resolve_props(props, get_setting, f"function {name!r} binding {b.name!r}")
            except BindingExpressionError as e:
                raise FunctionLoadError(str(e)) from None
            bindings.append(b)
        triggers = [b for b in bindings if b.type in TRIGGERS]
        if len(triggers) != 1:
            raise FunctionLoadError(f"function {name!r}: needs exactly one trigger, found {len(triggers)}")
        hints = _type_hints(user_fn)
        params = list(inspect.signature(user_fn).parameters)
        fd = FunctionDef(
            name=name, func=user_fn,
            is_async=inspect.iscoroutinefunction(user_fn),
            trigger=triggers[0],
            inputs=[b for b in bindings if b.direction == "in" and b is not triggers[0]],
            outputs=[b for b in bindings if b.direction == "out" and b.name != "$return"],
            return_binding=next((b for b in bindings if b.name == "$return"), None),
            annotations={k: v for k, v in hints.items() if k != "return"},
            return_annotation=hints.get("return"),
        )
        binding_names = {b.name for b in bindings if b.name != "$return"}
        for p in params:
            if p not in binding_names:
                if p == "context":
                    fd.context_param = p
                    continue
                raise FunctionLoadError(
                    f"function {name!r}: parameter {p!r} is declared in Python but not as a binding")
        missing = binding_names - set(params)
        if missing:
            raise FunctionLoadError(
                f"function {name!r}: binding(s) {', '.join(sorted(missing))} declared but not parameters "
                f"of {user_fn.__name__}()")
        fd.http_streams = fd.trigger.type == "httpTrigger" and _is_streams_request(
            fd.annotations.get(fd.trigger.name))
        _check_annotations(fd, bindings)
        fd.retry = retry_policy(fd.name, fd.trigger.type, f, get_setting)
        defs.append(fd)
    _check_http_streams(defs, get_setting("PYTHON_ENABLE_INIT_INDEXING"))
    return defs


# --- Retry policies ---------------------------------------------------------------------------------
#
# `@app.retry(...)` puts a `retry_policy` setting on the function. The worker turns it into the
# host's RpcRetryOptions (azure_functions_worker/loader.py `build_retry_protos`): "fixed_delay" or
# "exponential_backoff" (the only RetryStrategy values), `int(max_retry_count)`, and each interval
# through `time.strptime(value, "%H:%M:%S")` into whole seconds — so `%Setting%` is not resolved there.
# The host then validates (azure-functions-host Utility.ValidateRetryOptions, and the attributes of
# azure-webjobs-sdk): MaxRetryCount required and >= -1, DelayInterval for fixed_delay, Minimum- and
# MaximumInterval for exponential_backoff, minimum <= maximum. A function failing any of these does not
# run in Azure; here start-up stops, naming it.

RETRY_SETTING = "retry_policy"
# Local host only (tests): a JSON object with @app.retry's arguments that replaces the function's policy.
RETRY_OVERRIDE_SETTING = "LOCAL_RETRY_POLICY_OVERRIDE__{function}"
RETRY_TRIGGERS = {"cosmosDBTrigger"}  # trigger bindings with [SupportsRetry] that this host runs


def retry_policy(name: str, trigger_type: str, function: Any,
                 get_setting: Callable[[str], str | None]) -> RetryPolicy | None:
    raw = _retry_settings(function)
    override_setting = RETRY_OVERRIDE_SETTING.format(function=name)
    override = get_setting(override_setting)
    if override:
        try:
            raw = dict(json.loads(override))
        except (ValueError, TypeError) as e:
            raise FunctionLoadError(f"function {name!r}: {override_setting} must be a JSON object of "
                                    f"@app.retry arguments ({e})") from None
        log.warning("function %r: retry policy replaced by the local host setting %s: %s", name,
                    override_setting, override)
    if not raw:
        return None
    policy = parse_retry_policy(name, raw)
    if trigger_type not in RETRY_TRIGGERS:
        # FunctionIndexer's warning for a trigger without [SupportsRetry] (HTTP). This host does not
        # retry such invocations at all.
        log.warning("Soon retries will not be supported for function '%s'. For more information, please "
                    "visit http://aka.ms/func-retry-policies. (This local host does not retry %s "
                    "invocations.)", name, trigger_type)
        return None
    return policy


def _retry_settings(function: Any) -> dict[str, Any] | None:
    try:
        raw = function.get_settings_dict(RETRY_SETTING)
    except AttributeError:  # what the worker tolerates too (an older azure-functions)
        return None
    return {k: v for k, v in raw.items() if k != "setting_name"} if raw else None


def parse_retry_policy(name: str, raw: dict[str, Any]) -> RetryPolicy:
    where = f"function {name!r}: retry policy"
    strategy = raw.get("strategy")
    if strategy not in (FIXED_DELAY, EXPONENTIAL_BACKOFF):
        raise FunctionLoadError(f"{where}: strategy {strategy!r} is not one of {FIXED_DELAY!r}, "
                                f"{EXPONENTIAL_BACKOFF!r}")
    count_raw = raw.get("max_retry_count")
    if count_raw is None or count_raw == "":
        raise FunctionLoadError(f"{where}: max_retry_count is required (Value cannot be null. "
                                f"(Parameter 'MaxRetryCount'))")
    try:
        count = int(count_raw)
    except (TypeError, ValueError) as e:
        raise FunctionLoadError(
            f"{where}: max_retry_count {count_raw!r} is not a whole number ({e})") from None
    if count < -1:
        raise FunctionLoadError(f"{where}: max_retry_count {count} is below -1 (Specified argument was out "
                                f"of the range of valid values. (Parameter 'maxRetryCount'))")
    if strategy == FIXED_DELAY:
        delay = _interval(where, raw, "delay_interval", "DelayInterval")
        return RetryPolicy(strategy, count, delay_interval=delay)
    lo = _interval(where, raw, "minimum_interval", "MinimumInterval")
    hi = _interval(where, raw, "maximum_interval", "MaximumInterval")
    if lo > hi:
        raise FunctionLoadError(f"{where}: minimum_interval {raw['minimum_interval']!r} is longer than "
                                f"maximum_interval {raw['maximum_interval']!r} (The minimumInterval must not "
                                f"be greater than the maximumInterval.)")
    return RetryPolicy(strategy, count, minimum_interval=lo, maximum_interval=hi)


def _interval(where: str, raw: dict[str, Any], key: str, host_name: str) -> float:
    value = raw.get(key)
    if value is None or value == "":
        raise FunctionLoadError(f"{where}: {raw.get('strategy')} needs {key} (Value cannot be null. "
                                f"(Parameter '{host_name}'))")
    if not isinstance(value, str):
        raise FunctionLoadError(f"{where}: {key} must be a string HH:MM:SS, not {value!r}")
    try:
        t = time.strptime(value, "%H:%M:%S")
    except ValueError as e:
        raise FunctionLoadError(f"{where}: {key} {value!r} is not HH:MM:SS ({e})") from None
    return float(t.tm_hour * 3600 + t.tm_min * 60 + t.tm_sec)


def _is_streams_request(annotation: Any) -> bool:
    """A Starlette Request (FastAPI's is the same class): the worker's HTTP streams mode. Imported lazily:
    only apps that use the extension need starlette."""
    if not isinstance(annotation, type) or "starlette" not in sys.modules:
        return False
    from starlette.requests import Request

    return issubclass(annotation, Request)


def _true_like(value: str | None) -> bool:
    """The worker's `is_true_like` (azure_functions_worker/utils/common.py)."""
    return value is not None and value.lower().strip() in {"1", "true", "t", "yes", "y"}


def _check_http_streams(defs: list[FunctionDef], init_indexing: str | None) -> None:
    """HTTP streams are app-wide in the worker: once one function takes the FastAPI types, the host proxies
    every HTTP invocation to the worker's web server, where `func.HttpRequest` functions no longer work.
    And the worker starts that web server only when `PYTHON_ENABLE_INIT_INDEXING` is true
    (dispatcher.py `_handle__worker_init_request`); without it an invocation waits for a request that
    never comes. Both are refused at start-up here, so that the mistake is not found in Azure."""
    http = [fd for fd in defs if fd.trigger.type == "httpTrigger"]
    streams = [fd.name for fd in http if fd.http_streams]
    classic = [fd.name for fd in http if not fd.http_streams]
    if streams and not _true_like(init_indexing):
        raise FunctionLoadError(
            f"HTTP streams ({', '.join(streams)} take a FastAPI Request) need the app setting "
            "PYTHON_ENABLE_INIT_INDEXING=1: without it the Python worker never starts its HTTP server")
    if streams and classic:
        raise FunctionLoadError(
            f"HTTP streams are on ({', '.join(streams)} take a FastAPI Request), so every HTTP function must "
            f"take one; {', '.join(classic)} take(s) func.HttpRequest")


def load_app(app_dir: Path,
             get_setting: Callable[[str], str | None]) -> tuple[list[FunctionDef], ImportedScript]:
    script = get_setting("PYTHON_SCRIPT_FILE_NAME") or "function_app.py"
    imported = import_script(app_dir, script)
    try:
        return index_app(find_app(imported.module), get_setting), imported
    except BaseException:
        imported.unload()
        raise
