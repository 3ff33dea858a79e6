"""Function-level retry policies (`@app.retry`), as the Functions host runs them for a trigger that
supports retries (the Cosmos DB trigger is one: its binding carries `[SupportsRetry]`).

The policy is parsed and validated at start-up (`loader.py`, "Retry policies"); here is what it does at
run time, after Azure/azure-webjobs-sdk:

* `FunctionExecutorExtensions.TryExecuteAsync`: invoke; on failure, give up once `max_retry_count`
  retries were made (never, for -1), else wait the next delay and invoke the **same** trigger data again.
  A stopping host cancels the wait and leaves the loop without the batch counting as processed.
* `FixedDelayRetryAttribute`: every delay is `delay_interval`.
* `ExponentialBackoffRetryAttribute` → `Timers/RandomizedExponentialBackoffStrategy` (with
  `deltaBackoff = minimumInterval`): the first delay is `minimum_interval`; the k-th (k ≥ 2) is
  `minimum + r·2^(k−2)·minimum` with `r` uniform in [0.8, 1.2) (`RandomizationFactor = 0.2`), drawn
  anew each time; once a delay would reach `maximum_interval` it is `maximum_interval` from then on.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass

from azure.functions import _abc

FIXED_DELAY = "fixed_delay"
EXPONENTIAL_BACKOFF = "exponential_backoff"
RANDOMIZATION_FACTOR = 0.2


@dataclass(frozen=True)
class RetryPolicy:
    strategy: str  # FIXED_DELAY | EXPONENTIAL_BACKOFF
    max_retry_count: int  # -1: retry forever
    delay_interval: float = 0.0  # seconds (fixed_delay)
    minimum_interval: float = 0.0  # seconds (exponential_backoff)
    maximum_interval: float = 0.0

    def retries_left(self, retries_made: int) -> bool:
        return self.max_retry_count == -1 or retries_made < self.max_retry_count

    def delays(self, rng: random.Random | None = None) -> Iterator[float]:
        """The waits before retry 1, 2, 3, ... of one failing trigger invocation (a fresh iterator per
        invocation: the back-off starts again for the next batch)."""
        if self.strategy == FIXED_DELAY:
            while True:
                yield self.delay_interval
        rng = rng or random.Random()  # noqa: S311 - jitter, not a secret
        lo, hi = self.minimum_interval, self.maximum_interval
        delay, exponent = lo, 0
        while delay < hi:
            yield delay
            exponent += 1
            factor = rng.uniform(1.0 - RANDOMIZATION_FACTOR, 1.0 + RANDOMIZATION_FACTOR)
            delay = lo + factor * 2.0 ** (exponent - 1) * lo
        while True:  # the first delay to reach the maximum is the maximum, and so is every one after it
            yield hi

    def describe(self) -> str:
        count = "forever" if self.max_retry_count == -1 else f"{self.max_retry_count} retries"
        if self.strategy == FIXED_DELAY:
            return f"{FIXED_DELAY}, {count}, {self.delay_interval:g} s apart"
        return (f"{EXPONENTIAL_BACKOFF}, {count}, {self.minimum_interval:g} s to "
                f"{self.maximum_interval:g} s apart")


class RpcException(_abc.RpcException):
    """What the worker puts in `RetryContext.exception`: the previous attempt's failure."""

    def __init__(self, source: str = "", stack_trace: str = "", message: str = "") -> None:
        self._source, self._stack_trace, self._message = source, stack_trace, message

    @property
    def source(self) -> str:
        return self._source

    @property
    def stack_trace(self) -> str:
        return self._stack_trace

    @property
    def message(self) -> str:
        return self._message


class RetryContext(_abc.RetryContext):
    """`context.retry_context`: `retry_count` is 0 on the first attempt and n on the n-th retry;
    `max_retry_count` is the policy's (0 without a policy, as the worker reports it)."""

    def __init__(self, retry_count: int = 0, max_retry_count: int = 0,
                 exception: RpcException | None = None) -> None:
        self._retry_count = retry_count
        self._max_retry_count = max_retry_count
        self._exception = exception or RpcException()

    @property
    def retry_count(self) -> int:
        return self._retry_count

    @property
    def max_retry_count(self) -> int:
        return self._max_retry_count

    @property
    def exception(self) -> RpcException:
        return self._exception

    @property
    def rpc_exception(self) -> RpcException:  # the worker's dataclass field name
        return self._exception
