"""One invocation: resolve inputs, call the handler, flush outputs.

Mirrors the host/worker split: input bindings are read by the host before the call (so a missing
binding-expression value fails the invocation before any user code runs), the handler gets
worker-converted Python objects, and output bindings are flushed after it returns. An invocation
succeeds only if every output was written: a SaveChat 201 means the document is stored.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import logging
import threading
import traceback
import uuid
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol

from . import conversion
from .conversion import Datum
from .loader import BindingSpec, FunctionDef

log = logging.getLogger("emulators.functions")


class InputProvider(Protocol):
    async def read(self, fd: FunctionDef, binding: BindingSpec, data: Mapping[str, Any]) -> Datum: ...


class OutputProvider(Protocol):
    async def write(self, fd: FunctionDef, binding: BindingSpec, datum: Datum,
                    data: Mapping[str, Any]) -> None: ...


class InvocationError(RuntimeError):
    """The invocation failed; `stage` says where (binding, handler, output) for the log."""

    def __init__(self, stage: str, cause: BaseException) -> None:
        super().__init__(f"{stage}: {type(cause).__name__}: {cause}")
        self.stage = stage
        self.cause = cause

    @property
    def trace(self) -> str:
        """The cause's traceback, for the log (never for a response)."""
        return "".join(traceback.format_exception(self.cause)).rstrip()


@dataclass
class InvocationResult:
    invocation_id: str
    return_datum: Datum | None
    http_outputs: dict[str, Datum]
    stream_response: Any = None  # HTTP streams: the handler's Starlette Response, as returned
    # HTTP streams: the output bindings, written only once the response has been sent (the worker calls
    # set_http_response before it returns output_data to the host, dispatcher.py).
    write_outputs: Callable[[], Awaitable[None]] | None = None


class Invoker:
    def __init__(self, app_dir: str, inputs: Mapping[str, InputProvider],
                 outputs: Mapping[str, OutputProvider], max_workers: int | None = None,
                 timeout: float | None = None) -> None:
        self.app_dir = app_dir
        self.timeout = timeout  # host.json functionTimeout
        self.inputs = dict(inputs)
        self.outputs = dict(outputs)
        # Sync handlers never run on the event loop (the worker's thread pool does the same).
        self.executor = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="function")
        self._busy = 0  # sync handlers running in threads right now
        self._busy_lock = threading.Lock()

    @property
    def busy_threads(self) -> int:
        """Sync handlers still running: Python cannot stop them, and exiting would wait for them."""
        return self._busy

    def _run_sync(self, ctx: contextvars.Context, fn: Any, kwargs: dict[str, Any]) -> Any:
        with self._busy_lock:
            self._busy += 1
        try:
            return ctx.run(fn, **kwargs)
        finally:
            with self._busy_lock:
                self._busy -= 1

    def close(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)

    async def invoke(self, fd: FunctionDef, trigger_datum: Datum,
                     data: Mapping[str, Any], stream_request: Any = None,
                     retry_context: Any = None) -> InvocationResult:
        """`stream_request`: for an HTTP streams function, the Starlette Request the front door built;
        the handler gets it as is, and its Response comes back in `stream_response`. `retry_context`:
        what `context.retry_context` shows (retry.RetryContext; default: no retries)."""
        invocation_id = str(uuid.uuid4())
        kwargs: dict[str, Any] = {}
        try:
            kwargs[fd.trigger.name] = (stream_request if fd.http_streams else conversion.decode(
                fd.trigger.type, trigger_datum, fd.annotations.get(fd.trigger.name)))
        except Exception as e:
            raise InvocationError(f"trigger {fd.trigger.name!r}", e) from e
        for b in fd.inputs:
            provider = self.inputs[b.type]
            try:
                datum = await provider.read(fd, b, data)
                kwargs[b.name] = conversion.decode(b.type, datum, fd.annotations.get(b.name))
            except Exception as e:
                raise InvocationError(f"input binding {b.name!r} ({b.type})", e) from e
        outs: dict[str, conversion.Out] = {}
        for b in fd.outputs:
            outs[b.name] = kwargs[b.name] = conversion.Out()
        if fd.context_param:
            kwargs[fd.context_param] = conversion.Context(invocation_id, fd.name, self.app_dir, retry_context)
        try:
            if fd.is_async:
                pending = fd.func(**kwargs)
            else:
                ctx = contextvars.copy_context()
                call = functools.partial(self._run_sync, ctx, fd.func, kwargs)
                pending = asyncio.get_running_loop().run_in_executor(self.executor, call)
            # A timed-out sync handler keeps its thread (Python cannot stop it), but the invocation
            # fails and writes no outputs, as in Azure.
            result = await asyncio.wait_for(pending, self.timeout)
        except TimeoutError as e:
            raise InvocationError("handler", TimeoutError(
                f"timed out after {self.timeout:g} s (host.json functionTimeout)")) from e
        except Exception as e:
            raise InvocationError("handler", e) from e
        http_outputs: dict[str, Datum] = {}

        async def write_outputs() -> None:
            for b in fd.outputs:
                value = outs[b.name].get()
                if value is None:
                    continue
                try:
                    datum = conversion.encode(b.type, value, fd.out_type(b))
                    if b.type == "http":
                        http_outputs[b.name] = datum
                    else:
                        await self.outputs[b.type].write(fd, b, datum, data)
                except Exception as e:
                    raise InvocationError(f"output binding {b.name!r} ({b.type})", e) from e

        if fd.http_streams:
            return InvocationResult(invocation_id, None, http_outputs, stream_response=result,
                                    write_outputs=write_outputs)
        await write_outputs()  # classic mode: the outputs are stored before the response exists
        return_datum = None
        if fd.return_binding is not None and result is not None:
            try:
                return_datum = conversion.encode(fd.return_binding.type, result, fd.return_annotation)
                if fd.return_binding.type != "http":
                    provider = self.outputs[fd.return_binding.type]
                    await provider.write(fd, fd.return_binding, return_datum, data)
            except Exception as e:
                raise InvocationError(f"return value ({fd.return_binding.type})", e) from e
        return InvocationResult(invocation_id, return_datum, http_outputs)
