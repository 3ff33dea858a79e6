"""In-process change notifications: a consumer in the same process wakes within milliseconds of a write.

Why edge-triggered with a counter: a write that lands between two ``wait()`` calls is remembered, so a
consumer that reads the change feed after each wake-up can never miss one; many writes between two waits
collapse into one wake-up (the consumer drains the feed anyway).
"""

from __future__ import annotations

import asyncio
import threading
from collections import defaultdict


class Subscription:
    """Change notifications for one container; ``wait()`` may be awaited from any event loop."""

    def __init__(self, hub: NotificationHub, key: tuple[str, str]) -> None:
        self._hub = hub
        self._key = key
        self._lock = threading.Lock()
        self._count = 0
        self._seen = 0
        self._event: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.closed = False

    def _bump(self) -> None:
        with self._lock:
            self._count += 1
            loop, event = self._loop, self._event
        if loop is None or event is None:
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            event.set()
        else:
            try:
                loop.call_soon_threadsafe(event.set)
            except RuntimeError:  # the waiter's loop is closed: nobody is listening any more
                pass

    async def wait(self, timeout: float | None = None) -> bool:  # noqa: ASYNC109 - the public API
        """True as soon as the container changed since the previous ``wait()`` returned; False on timeout."""
        if self.closed:
            raise RuntimeError("subscription is closed")
        loop = asyncio.get_running_loop()
        with self._lock:
            if self._loop is not loop:
                self._loop, self._event = loop, asyncio.Event()
            event = self._event
            assert event is not None
            event.clear()
            if self._count != self._seen:
                self._seen = self._count
                return True
        try:
            async with asyncio.timeout(timeout):
                while True:
                    await event.wait()
                    with self._lock:
                        event.clear()
                        if self._count != self._seen:
                            self._seen = self._count
                            return True
        except TimeoutError:
            return False

    def close(self) -> None:
        self.closed = True
        self._hub._remove(self)


class NotificationHub:
    def __init__(self) -> None:
        self._subs: dict[tuple[str, str], set[Subscription]] = defaultdict(set)
        self._lock = threading.Lock()

    def subscribe(self, database_id: str, container_id: str) -> Subscription:
        sub = Subscription(self, (database_id, container_id))
        with self._lock:
            self._subs[sub._key].add(sub)
        return sub

    def _remove(self, sub: Subscription) -> None:
        with self._lock:
            self._subs.get(sub._key, set()).discard(sub)

    def notify(self, database_id: str, container_id: str) -> None:
        with self._lock:
            subs = list(self._subs.get((database_id, container_id), ()))
        for sub in subs:
            sub._bump()
