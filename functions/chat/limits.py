"""Per-identity rate limits that hold across every Flex instance: the count lives in Cosmos DB.

A limit is N calls per window of S seconds, fixed windows aligned to the epoch. Each window of each identity
is one small document in the `control` container (`post:<identity>:<window start>`, with a TTL of two
windows, so nothing needs cleaning up). Taking a slot is ONE conditional patch: `incr /n` with the filter
`FROM c WHERE c.n < N`; the service applies it atomically, or answers 412 when the window is full, which
becomes our 429 with `Retry-After` = the seconds left in the window. The first call of a window finds no
document (404) and creates it (a racing creator gets 409 and patches instead).

Cost per message: one patch of a ~100-byte document (the container indexes nothing), measured in
docs/api.md "Rate limits". A fixed window lets a burst of up to 2N straddle a boundary; for a chat that
is acceptable, and it keeps the check to one request.

Limits come from settings (`CHAT_POST_LIMIT`, `CHAT_NEGOTIATE_LIMIT`, as `<count>/<seconds>s`): checked when
the app is indexed, so a bad value stops the app at start rather than at the first post, and read at each
call (parsed once per value), so a host that changes the settings between two runs of the app gets the new
ones."""

from __future__ import annotations

import functools
import math
import os
import re
import time
from dataclasses import dataclass

from azure.core.exceptions import AzureError
from azure.cosmos import exceptions

from . import cosmos
from .errors import ApiError

_SPEC = re.compile(r"\s*([0-9]{1,6})\s*/\s*([0-9]{1,6})\s*s\s*")


@dataclass(frozen=True)
class Limit:
    name: str  # the document prefix and the word in the error message
    count: int
    seconds: int

    @classmethod
    def from_setting(cls, name: str, setting: str, default: str) -> Limit:
        return _parse(name, setting, os.environ.get(setting) or default, default)

    def describe(self) -> str:
        return f"at most {self.count} per {self.seconds} s per identity"


@functools.lru_cache(maxsize=32)
def _parse(name: str, setting: str, raw: str, default: str) -> Limit:
    match = _SPEC.fullmatch(raw)
    if match is None or int(match.group(1)) < 1 or int(match.group(2)) < 1:
        raise ValueError(f"{setting}={raw!r}: expected <count>/<seconds>s, e.g. {default}")
    return Limit(name, int(match.group(1)), int(match.group(2)))


def posts() -> Limit:
    return Limit.from_setting("post", "CHAT_POST_LIMIT", "20/20s")


def negotiations() -> Limit:
    return Limit.from_setting("negotiate", "CHAT_NEGOTIATE_LIMIT", "30/60s")


posts(), negotiations()  # a bad setting fails indexing, named


def _window(limit: Limit, now: float) -> tuple[int, int]:
    """(window start, seconds until the next window), both whole seconds."""
    start = int(now // limit.seconds) * limit.seconds
    return start, max(1, math.ceil(start + limit.seconds - now))


async def take(limit: Limit, identity_id: str, now: float | None = None) -> None:
    """Count one call, or raise a 429 with Retry-After when this window is full."""
    now = time.time() if now is None else now
    start, left = _window(limit, now)
    doc_id = f"{limit.name}:{identity_id}:{start}"
    try:
        await _count(limit, doc_id, left)
    except (AzureError, cosmos.StoreUnavailable) as error:
        raise cosmos.unavailable(f"the {limit.name} limit could not be checked", error) from None


async def _count(limit: Limit, doc_id: str, left: int) -> None:
    control = cosmos.container(cosmos.CONTROL)
    increment = [{"op": "incr", "path": "/n", "value": 1}]
    condition = f"FROM c WHERE c.n < {limit.count}"
    for _ in range(2):
        try:
            await control.patch_item(doc_id, doc_id, increment, filter_predicate=condition, no_response=True)
            return
        except exceptions.CosmosAccessConditionFailedError:
            raise ApiError(
                429,
                "rate_limited",
                f"too many {limit.name} requests ({limit.describe()}): retry in {left} s",
                None,
                {"Retry-After": str(left)},
            ) from None
        except exceptions.CosmosResourceNotFoundError:
            try:
                await control.create_item({"id": doc_id, "n": 1, "ttl": 2 * limit.seconds}, no_response=True)
                return
            except exceptions.CosmosResourceExistsError:
                continue  # another instance created it first: patch that one
    raise cosmos.StoreUnavailable("the window document kept appearing and vanishing")
