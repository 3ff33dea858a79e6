"""The app's own HTTP functions, read from the FunctionApp itself so there is never a second route list."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import azure.functions as func

from .routes import RouteTemplate

ALL_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE")


class FunctionApp(func.FunctionApp):
    """azure-functions 1.26's `get_functions()` raises "does not have a unique function name" when called a
    second time (it keeps the names seen by the first call). The worker calls it once at indexing and
    FileServer needs it again at run time, so each call starts a fresh uniqueness check; duplicates within
    one call still fail."""

    def get_functions(self) -> list[Any]:
        self.functions_bindings = None
        return super().get_functions()


@dataclass(frozen=True)
class HttpFunction:
    name: str
    route: RouteTemplate
    methods: frozenset[str]
    trigger_arg: str
    handler: Callable[..., Any]
    binding_args: tuple[str, ...]  # the handler's other parameters, filled from FileServer's own bindings

    def allows(self, method: str) -> bool:
        return method in self.methods


def _methods(trigger: Any) -> frozenset[str]:
    declared = getattr(trigger, "methods", None)
    if not declared:
        return frozenset(ALL_METHODS)
    return frozenset(str(getattr(m, "value", m)).upper() for m in declared)


def http_functions(app: func.FunctionApp, exclude: str | None = None) -> list[HttpFunction]:
    """Every HTTP-triggered function but `exclude` (the catch-all itself), most specific route first."""
    found: list[HttpFunction] = []
    for fn in app.get_functions():
        name = fn.get_function_name()
        trigger = fn.get_trigger()
        if name == exclude or not fn.is_http_function() or trigger is None:
            continue
        # Called in-process with azure.functions objects, as the worker calls it.
        handler = fn.get_user_function()
        params = list(inspect.signature(handler).parameters)
        trigger_arg = trigger.name
        found.append(
            HttpFunction(
                name=name,
                route=RouteTemplate.parse(trigger.route or ""),
                methods=_methods(trigger),
                trigger_arg=trigger_arg,
                handler=handler,
                binding_args=tuple(p for p in params if p != trigger_arg),
            )
        )
    return sorted(found, key=lambda f: f.route.precedence())
