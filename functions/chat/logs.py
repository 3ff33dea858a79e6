"""One log line per invocation: which function, the outcome, how long. Never the message text (user data).

FileServer dispatches some requests in-process to another function's handler (the 2018 aliases); that is still
one invocation, so it stays one line, naming the target: `z_FileServer -> SaveChat 201 in 0.4 ms`."""

from __future__ import annotations

import functools
import inspect
import logging
import time
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any, TypeVar

import azure.functions as func

log = logging.getLogger("cosmic_chat")

F = TypeVar("F", bound=Callable[..., Any])

# The handlers an invocation dispatched to in-process; None outside any invocation. A context variable, so
# concurrent async invocations on one event loop never see each other's.
_targets: ContextVar[list[str] | None] = ContextVar("cosmic_chat_targets", default=None)


def _outcome(result: object) -> str:
    if isinstance(result, func.HttpResponse):
        return str(result.status_code)
    if isinstance(result, str):
        return result
    return "ok"


class _Timer:
    """Times one invocation and writes its line, unless it runs inside another one (then the outer line
    names it instead)."""

    def __init__(self, name: str) -> None:
        self.name = name
        outer = _targets.get()
        self.nested = outer is not None
        if outer is not None:
            outer.append(name)
            return
        self.token = _targets.set([])
        self.start = time.perf_counter()

    def done(self, outcome: str) -> None:
        if self.nested:
            return
        targets = _targets.get() or []
        _targets.reset(self.token)
        via = "".join(f" -> {target}" for target in targets)
        log.info("%s%s %s in %.1f ms", self.name, via, outcome, (time.perf_counter() - self.start) * 1000)


def invocation(name: str) -> Callable[[F], F]:
    """Wrap a handler (sync or async) so it logs `<name> <outcome> in <ms> ms` once, also when it raises."""

    def wrap(handler: F) -> F:
        if inspect.iscoroutinefunction(handler):

            @functools.wraps(handler)
            async def run_async(*args: Any, **kwargs: Any) -> Any:
                timer = _Timer(name)
                outcome = "exception"
                try:
                    result = await handler(*args, **kwargs)
                    outcome = _outcome(result)
                    return result
                finally:
                    timer.done(outcome)

            return run_async  # type: ignore[return-value]

        @functools.wraps(handler)
        def run(*args: Any, **kwargs: Any) -> Any:
            timer = _Timer(name)
            outcome = "exception"
            try:
                result = handler(*args, **kwargs)
                outcome = _outcome(result)
                return result
            finally:
                timer.done(outcome)

        return run  # type: ignore[return-value]

    return wrap
