"""The Cosmos DB trigger: a change-feed consumer with its checkpoint in the lease container.

The Python SDK has no change feed processor, so this is the lease pattern done by hand, with the
Functions extension's observable behaviour (docs/parity.md has the sources):

* one lease document per monitored container (id `{prefix}{database}.{container}..0`, partition
  key `/id`) holding `Owner`, `ContinuationToken` and `timestamp`. Acquire by `create_item` (409 =
  someone else created it first, so read it again), take over by `replace_item` with `If-Match`
  (412 = lost the race). The lease container is never created (identity-based connections cannot).
* The owner name is stable per machine and function, so a restarted host resumes its own lease at
  once; another owner takes it over only after it expires (60 s without renewal), or at once if
  the previous owner released it on a clean stop.
* Batches of at most `maxItemsPerInvocation` documents. The extension does not retry a failed
  batch (CosmosDBTriggerListener.ProcessChangesAsync): without a retry policy a failing invocation
  is logged ("Lease 0 encountered an unhandled user exception during processing.", with the
  documents' ids here) and the checkpoint moves past the batch. With `@app.retry` the same batch is
  invoked again as the policy says (retry.py), then, after `max_retry_count` retries, given up
  and checkpointed past the same way (-1: never given up). A clean stop during a retry wait leaves
  the loop at once without checkpointing, so the batch comes again after a restart.
* The checkpoint is written after every batch, except that when batches come back to back (the
  page was full, or more changes were already notified) its write is deferred — up to
  `CHECKPOINT_INTERVAL` since the last one — and done by a later batch, by the empty read that
  ends the run, or with the lease's release on a clean stop. A deferred checkpoint only ever holds
  batches already processed: a crash re-delivers at most that interval of batches, which
  at-least-once allows (clients de-duplicate by id).
* Where a lease without a continuation starts (ChangeFeedProcessorCore.StartAsync and the
  iterator's precedence: continuation > start time > beginning): `startFromTime` (ISO 8601, UTC),
  else `startFromBeginning`, else "now" — the instant this consumer started minus 1 s, taken at
  every start and never stored. So a lease that has read nothing yet starts from the new "now"
  after a restart: changes made while no host ran are not delivered (as in Azure). A lease with a
  continuation always resumes from it; the start options are then ignored. Both options together,
  or an unreadable `startFromTime`, refuse start-up with the extension's message.
* Idle: `feedPollDelay` (ms) between polls, or, when the Cosmos emulator runs in this process,
  wake on its change notification instead.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import socket
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from azure.core import MatchConditions
from azure.cosmos import exceptions as cosmos_errors

from .conversion import Datum
from .cosmos_bindings import CosmosClients
from .invoker import InvocationError, Invoker
from .loader import FunctionDef, FunctionLoadError
from .retry import RetryContext, RpcException

log = logging.getLogger("emulators.functions")

LEASE_EXPIRY = 60.0  # default leaseExpirationInterval: seconds without renewal before a takeover
LEASE_RENEW = 17.0  # default leaseRenewInterval
NOTIFIED_IDLE = 5.0  # longest idle wait when the emulator's change notification wakes the consumer
STOP_GRACE = 5.0  # how long a clean stop waits for an in-flight batch to be invoked and checkpointed
FIRST_RETRY = 0.5  # back-off while the change feed or the lease container is unavailable: 0.5 s, 1 s, ...
MAX_RETRY = 30.0
START_BACK_OFF = 1.0  # a lease starting "now" reads from the consumer's start minus this (the SDK's)
MAX_LOGGED_IDS = 20  # document ids named in the line of a failed invocation
RELEASE_TIMEOUT = 2.0  # a clean stop does not wait longer than this for the lease release
CHECKPOINT_INTERVAL = 0.25  # longest a checkpoint write is deferred while batches come back to back


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _age(timestamp: str | None) -> float:
    if not timestamp:
        return float("inf")
    try:
        then = datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    except ValueError:
        return float("inf")
    return (datetime.now(UTC) - then).total_seconds()


class LeaseLost(RuntimeError):
    pass


class ChangeFeedConsumer:
    def __init__(self, fd: FunctionDef, clients: CosmosClients, invoker: Invoker, notifier: Any = None,
                 owner: str | None = None) -> None:
        self.fd = fd
        self.clients = clients
        self.invoker = invoker
        self.notifier = notifier
        t = fd.trigger
        self.database = str(t.get("databaseName"))
        self.container_name = str(t.get("containerName"))
        self.lease_database = str(t.get("leaseDatabaseName") or self.database)
        self.lease_container_name = str(t.get("leaseContainerName") or "leases")
        self.connection = str(t.get("connection") or "CosmosDBConnection")
        self.lease_connection = str(t.get("leaseConnection") or self.connection)
        self.max_items = int(t.get("maxItemsPerInvocation") or 100)
        self.poll_delay = float(t.get("feedPollDelay") or 5000) / 1000.0
        self.lease_expiry = float(t.get("leaseExpirationInterval") or LEASE_EXPIRY * 1000) / 1000.0
        self.lease_renew = float(t.get("leaseRenewInterval") or LEASE_RENEW * 1000) / 1000.0
        self.start_from_beginning = str(t.get("startFromBeginning")).lower() == "true"
        self.start_from_time = _start_from_time(fd.name, t.get("startFromTime"), self.start_from_beginning)
        prefix = str(t.get("leaseContainerPrefix") or t.get("leaseCollectionPrefix") or "")
        self.lease_id = f"{prefix}{self.database}.{self.container_name}..0"
        self.owner = owner or f"{socket.gethostname()}:{fd.name}"
        self._task: asyncio.Task[None] | None = None
        self._lease: dict[str, Any] | None = None
        self._lease_written = 0.0
        # The continuation after the last successfully invoked batch when its lease write was
        # deferred (batches coming back to back), else None.
        self._pending: str | None = None
        self._sub: Any = None
        self._start_time = datetime.now(UTC) - timedelta(seconds=START_BACK_OFF)
        self._stopping = asyncio.Event()
        # Held from invoking a batch until its checkpoint is written: a clean stop waits for it so a
        # delivered batch is not delivered again after a restart (a crash still may: at-least-once).
        self._in_flight = asyncio.Lock()
        self.invocations = 0
        self.delivered = 0
        self.failed_batches = 0  # given up on (no policy, or its retries spent): checkpointed past

    # --- lifecycle ----------------------------------------------------------------------------

    def start(self) -> None:
        # "Now" for a lease without a continuation: taken at every start, before the host serves HTTP.
        self._start_time = datetime.now(UTC) - timedelta(seconds=START_BACK_OFF)
        self._stopping.clear()
        if self.notifier is not None:
            # Subscribe before the first poll so no write can fall between a poll and the wait.
            self._sub = self.notifier(self.database, self.container_name)
        self._task = asyncio.create_task(self._run(), name=f"cosmosDBTrigger:{self.fd.name}")

    async def stop(self) -> None:
        if self._task is not None:
            self._stopping.set()  # a retry wait ends now, without a checkpoint
            drained = False
            try:
                drained = await asyncio.wait_for(self._in_flight.acquire(), STOP_GRACE)
            except TimeoutError:
                log.warning("%s: stopping with an invocation still running; its batch comes again after "
                            "a restart", self.fd.name)
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception) as e:
                if not isinstance(e, asyncio.CancelledError):
                    log.warning("%s: change-feed consumer ended with %s", self.fd.name, e)
            self._task = None
            if drained:
                self._in_flight.release()
        if self._sub is not None:
            self._sub.close()
            self._sub = None
        await self._release()

    async def _release(self) -> None:
        """Give the lease up on a clean stop, as the change feed processor does, so that another
        owner (a renamed machine, a fresh container) resumes from the checkpoint at once instead of
        waiting for the lease to expire. Only the owner changes: the checkpoint stays the last one
        written after a successful invocation. After a crash the lease simply expires."""
        lease, self._lease = self._lease, None
        pending, self._pending = self._pending, None
        if lease is None or lease.get("Owner") != self.owner:
            return
        released = dict(lease, Owner=None, timestamp=_now_iso())
        if pending is not None:  # a deferred checkpoint: every batch up to it was invoked successfully
            released["ContinuationToken"] = pending
        try:
            async with asyncio.timeout(RELEASE_TIMEOUT):
                await self._lease_container().replace_item(
                    self.lease_id, released, etag=lease["_etag"],
                    match_condition=MatchConditions.IfNotModified)
        except Exception as e:  # the lease will expire instead
            log.warning("%s: could not release lease %s (%s); it expires in %.0f s", self.fd.name,
                        self.lease_id, type(e).__name__, self.lease_expiry)

    # --- leases -------------------------------------------------------------------------------

    def _lease_container(self) -> Any:
        client = self.clients.client(self.lease_connection)
        return client.get_database_client(self.lease_database).get_container_client(self.lease_container_name)

    def _monitored(self) -> Any:
        client = self.clients.client(self.connection)
        return client.get_database_client(self.database).get_container_client(self.container_name)

    async def _acquire(self) -> dict[str, Any]:
        leases = self._lease_container()
        while True:
            try:
                lease = await leases.read_item(self.lease_id, partition_key=self.lease_id)
            except cosmos_errors.CosmosResourceNotFoundError as e:
                if getattr(e, "sub_status", None) == 1003 or "Owner resource does not exist" in str(e):
                    raise
                body = {"id": self.lease_id, "LeaseToken": "0", "ContinuationToken": None,
                        "Owner": self.owner, "timestamp": _now_iso(),
                        "version": 1, "properties": {"function": self.fd.name}}
                try:
                    lease = await leases.create_item(body)
                    log.info("%s: created lease %s in %s/%s", self.fd.name, self.lease_id,
                             self.lease_database, self.lease_container_name)
                    return lease
                except cosmos_errors.CosmosResourceExistsError:
                    continue  # created by someone else a moment ago: read it and compete properly
            owner = lease.get("Owner")
            if owner and owner != self.owner and _age(lease.get("timestamp")) < self.lease_expiry:
                wait = max(0.5, self.lease_expiry - _age(lease.get("timestamp")))
                log.info("%s: lease %s held by %s; retrying in %.0f s", self.fd.name, self.lease_id, owner,
                         wait)
                await asyncio.sleep(wait)
                continue
            lease["Owner"] = self.owner
            lease["timestamp"] = _now_iso()
            try:
                return await leases.replace_item(self.lease_id, lease, etag=lease["_etag"],
                                                 match_condition=MatchConditions.IfNotModified)
            except cosmos_errors.CosmosAccessConditionFailedError:
                continue

    async def _write_lease(self, continuation: str | None) -> None:
        assert self._lease is not None
        lease = dict(self._lease)
        lease["ContinuationToken"] = continuation
        lease["timestamp"] = _now_iso()
        lease["Owner"] = self.owner
        try:
            self._lease = await self._lease_container().replace_item(
                self.lease_id, lease, etag=self._lease["_etag"],
                match_condition=MatchConditions.IfNotModified)
        except (cosmos_errors.CosmosAccessConditionFailedError, cosmos_errors.CosmosResourceNotFoundError):
            raise LeaseLost(self.lease_id) from None
        self._lease_written = time.monotonic()
        self._pending = None

    def _checkpoint(self) -> str | None:
        """The latest continuation safe to write: the deferred one, else what the lease holds."""
        if self._pending is not None:
            return self._pending
        return self._lease.get("ContinuationToken") if self._lease else None

    # --- the loop -----------------------------------------------------------------------------

    def _feed_kwargs(self, continuation: str | None) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"max_item_count": self.max_items}
        if continuation:
            kwargs["continuation"] = continuation
        elif self.start_from_time is not None:
            kwargs["start_time"] = self.start_from_time
        elif self.start_from_beginning:
            kwargs["start_time"] = "Beginning"
        else:
            # Sent as If-Modified-Since (whole seconds), as the .NET SDK sends its UtcNow - 1 s.
            kwargs["start_time"] = self._start_time.replace(microsecond=0)
        return kwargs

    async def _next_batch(self, continuation: str | None) -> tuple[list[dict[str, Any]], str | None]:
        """One change-feed page: at most `max_items` documents and the token just after them."""
        pager = self._monitored().query_items_change_feed(**self._feed_kwargs(continuation)).by_page()
        docs: list[dict[str, Any]] = []
        async for page in pager:
            docs = [d async for d in page]
            break
        return docs, _resumable(pager.continuation_token) or continuation

    async def _idle(self) -> None:
        """Wait for the next poll: `feedPollDelay`, or the emulator's change notification. The
        lease is renewed meanwhile (a poll delay longer than the lease expiry must not lose it)."""
        deadline = time.monotonic() + (NOTIFIED_IDLE if self._sub is not None else self.poll_delay)
        while (remaining := deadline - time.monotonic()) > 0:
            until_renew = self.lease_renew - (time.monotonic() - self._lease_written)
            if until_renew <= 0:
                await self._write_lease(self._checkpoint())
                continue
            if self._sub is not None:
                # The in-process notification is reliable, so no timed polling while idle; the
                # timeout only bounds how long a lost notification could go unnoticed.
                if await self._sub.wait(min(remaining, until_renew)):
                    return
            else:
                await asyncio.sleep(min(remaining, until_renew))

    async def _run(self) -> None:
        backoff = FIRST_RETRY
        while True:
            try:
                self._pending = None  # resume from what the lease holds (at worst, re-deliver)
                self._lease = await self._acquire()
                self._lease_written = time.monotonic()
                await self._consume()
                return  # stopping
            except asyncio.CancelledError:
                raise
            except LeaseLost:
                log.warning("%s: lost lease %s; re-acquiring", self.fd.name, self.lease_id)
                backoff = FIRST_RETRY
            except Exception as e:
                log.error("%s: change feed on %s/%s unavailable (%s: %s); retrying in %.1f s", self.fd.name,
                          self.database, self.container_name, type(e).__name__, _short(e), backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, MAX_RETRY)

    async def _consume(self) -> None:
        assert self._lease is not None
        continuation = self._lease.get("ContinuationToken")
        if continuation:
            log.info("%s: resuming %s/%s from its checkpoint", self.fd.name, self.database,
                     self.container_name)
        while True:
            docs, token = await self._next_batch(continuation)
            if not docs:
                if self._pending is not None or time.monotonic() - self._lease_written > self.lease_renew:
                    async with self._in_flight:  # a deferred checkpoint, or the renewal
                        await self._write_lease(continuation)
                await self._idle()
                continue
            async with self._in_flight:
                if not await self._deliver(docs):
                    return  # stopped during a retry wait: no checkpoint, the batch comes again
                continuation = token
                more = len(docs) >= self.max_items
                if not more and self._sub is not None:
                    # Changes notified since the read that gave this batch: read again at once
                    # (this consumes the notification that `_idle` would have returned on).
                    more = await self._sub.wait(0)
                if more and time.monotonic() - self._lease_written < CHECKPOINT_INTERVAL:
                    self._pending = continuation  # written by a later batch or the empty read
                else:
                    await self._write_lease(continuation)
            if self._sub is not None and not more:
                # A short page means the feed was caught up when read; anything written since has
                # bumped the notification (counted since the wait that led to that read), so wait on
                # it rather than spend a read to find out. Polling mode reads again, as before.
                await self._idle()

    async def _deliver(self, docs: list[dict[str, Any]]) -> bool:
        """Invoke, and retry the same batch as the function's retry policy says (FunctionExecutorExtensions
        .TryExecuteAsync). True once the batch is done with — succeeded, or failed with no retries left —
        so the checkpoint may move past it; False if a stop cancelled a retry wait (no checkpoint)."""
        policy = self.fd.retry
        delays = policy.delays() if policy is not None else None
        max_retries = policy.max_retry_count if policy is not None else 0
        retries = 0
        previous: RpcException | None = None
        what = f"cosmosDBTrigger {self.database}/{self.container_name} ({len(docs)} docs)"
        datum = Datum(type="json", value=json.dumps(docs))
        while True:
            started = time.perf_counter()
            try:
                result = await self.invoker.invoke(self.fd, datum, {},
                                                   retry_context=RetryContext(retries, max_retries, previous))
            except InvocationError as e:
                ms = (time.perf_counter() - started) * 1000
                log.error("%s %s in %.1f ms (Failed%s: %s) ids: %s\n%s", self.fd.name, what, ms,
                          _retry_note(retries, max_retries), e, _ids(docs), e.trace)
                if policy is None or not policy.retries_left(retries):
                    if policy is not None:
                        log.error("%s: Function execution failed after '%d' retries. Giving up on ids: %s",
                                  self.fd.name, retries, _ids(docs))
                    lease = (self._lease or {}).get("LeaseToken", "0")
                    log.warning("%s: Lease %s encountered an unhandled user exception during processing. "
                                "The checkpoint moves past the batch (%d docs); it is not delivered again.",
                                self.fd.name, lease, len(docs))
                    self.failed_batches += 1
                    return True
                assert delays is not None
                retries += 1
                delay = next(delays)
                previous = RpcException(source=e.stage, stack_trace=e.trace, message=str(e))
                log.warning("%s: Waiting for `%s` before retrying function execution. Next attempt: '%d'. "
                            "Max retry count: '%d'.", self.fd.name, _timespan(delay), retries, max_retries)
                if not await self._retry_wait(delay):
                    log.warning("%s: Invocation cancelled - exiting retry loop. The batch (%d docs) is not "
                                "checkpointed: it comes again after a restart.", self.fd.name, len(docs))
                    return False
                continue
            ms = (time.perf_counter() - started) * 1000
            self.invocations += 1
            self.delivered += len(docs)
            log.info("%s %s in %.1f ms (Succeeded, id=%s%s)", self.fd.name, what, ms, result.invocation_id,
                     _retry_note(retries, max_retries))
            return True

    async def _retry_wait(self, delay: float) -> bool:
        """Wait `delay` seconds before a retry, renewing the lease meanwhile; False if the host stops."""
        deadline = time.monotonic() + delay
        while (remaining := deadline - time.monotonic()) > 0 and not self._stopping.is_set():
            until_renew = self.lease_renew - (time.monotonic() - self._lease_written)
            if until_renew <= 0:
                await self._write_lease(self._checkpoint())
                continue
            try:
                await asyncio.wait_for(self._stopping.wait(), min(remaining, until_renew))
            except TimeoutError:
                pass
        return not self._stopping.is_set()


def _start_from_time(function: str, value: Any, from_beginning: bool) -> datetime | None:
    """The trigger's `startFromTime` (after `%Setting%` resolution), checked as CosmosDBTriggerListener
    does when it builds the processor: not with `startFromBeginning`, and a readable date-time."""
    if value is None or value == "":
        return None
    if from_beginning:
        raise FunctionLoadError(
            f"function {function!r}: Only one of StartFromBeginning or StartFromTime can be used")
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        raise FunctionLoadError(
            f"function {function!r}: startFromTime {value!r}: The specified StartFromTime parameter is "
            "not in the correct format. Please use the ISO 8601 format with the UTC designator. For example: "
            "'2021-02-16T14:19:29Z'.") from None
    # Without an offset it is taken as UTC (an App Service machine's local time).
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _retry_note(retries: int, max_retries: int) -> str:
    if not retries:
        return ""
    return f", retry {retries} of {'unlimited' if max_retries == -1 else max_retries}"


def _ids(docs: list[dict[str, Any]]) -> str:
    ids = [str(d.get("id")) for d in docs[:MAX_LOGGED_IDS]]
    more = len(docs) - len(ids)
    return ", ".join(ids) + (f" and {more} more" if more > 0 else "")


def _timespan(seconds: float) -> str:
    """A .NET TimeSpan's text, as the host's retry line shows it (00:00:01.8420000)."""
    whole = int(seconds)
    ticks = round((seconds - whole) * 10_000_000)
    h, rest = divmod(whole, 3600)
    m, sec = divmod(rest, 60)
    return f"{h:02d}:{m:02d}:{sec:02d}" + (f".{ticks:07d}" if ticks else "")


def _resumable(token: str | None) -> str | None:
    """azure-cosmos 4.17.1 cannot resume a continuation whose `startFrom` is a point in time
    (`ChangeFeedStartFromPointInTime.from_json` reads milliseconds as seconds: "year 58877 is out of
    range"). The start only matters for a range without its own token, and every range has one once
    a page came back, so restate it as "Beginning" (the token is base64 JSON, as the SDK writes it)."""
    if not token:
        return token
    try:
        state = json.loads(base64.b64decode(token))
    except ValueError:
        return token
    start = state.get("startFrom") if isinstance(state, dict) else None
    ranges = (state.get("continuation") or {}).get("continuation") or [] if isinstance(state, dict) else []
    if (isinstance(start, dict) and start.get("Type") == "PointInTime"
            and ranges and all(r.get("token") for r in ranges)):
        state["startFrom"] = {"Type": "Beginning"}
        return base64.b64encode(json.dumps(state).encode()).decode()
    return token


def _short(e: BaseException) -> str:
    return str(e).splitlines()[0][:200] if str(e) else ""

