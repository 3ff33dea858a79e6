"""One log line per invocation: which function, the outcome, how long. Never the message text (user data)."""

from __future__ import annotations

import functools
import inspect
import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar

import azure.functions as func

log = logging.getLogger("cosmic_chat")

F = TypeVar("F", bound=Callable[..., Any])


def _outcome(result: object) -> str:
    if isinstance(result, func.HttpResponse):
        return str(result.status_code)
    if isinstance(result, str):
        return result
    return "ok"


def invocation(name: str) -> Callable[[F], F]:
    """Wrap a handler (sync or async) so it logs `<name> <outcome> in <ms> ms` once, also when it raises."""

    def wrap(handler: F) -> F:
        if inspect.iscoroutinefunction(handler):

            @functools.wraps(handler)
            async def run_async(*args: Any, **kwargs: Any) -> Any:
                start = time.perf_counter()
                outcome = "exception"
                try:
                    result = await handler(*args, **kwargs)
                    outcome = _outcome(result)
                    return result
                finally:
                    log.info("%s %s in %.1f ms", name, outcome, (time.perf_counter() - start) * 1000)

            return run_async  # type: ignore[return-value]

        @functools.wraps(handler)
        def run(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            outcome = "exception"
            try:
                result = handler(*args, **kwargs)
                outcome = _outcome(result)
                return result
            finally:
                log.info("%s %s in %.1f ms", name, outcome, (time.perf_counter() - start) * 1000)

        return run  # type: ignore[return-value]

    return wrap
