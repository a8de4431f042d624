"""Wake long-polling clients when something changes, from any thread.

A waiter re-checks the database after every wake-up and at least every ``poll`` seconds,
so several server processes sharing one database still see each other's changes.
"""

from __future__ import annotations

import asyncio


class Notifier:
    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._event: asyncio.Event | None = None

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._event = asyncio.Event()

    def notify(self) -> None:
        """Callable from worker threads and from the event loop."""
        if self._loop is None or self._loop.is_closed():
            return
        try:
            self._loop.call_soon_threadsafe(self._bump)
        except RuntimeError:  # loop closing
            pass

    def _bump(self) -> None:
        if self._event is not None:
            self._event.set()
            self._event = asyncio.Event()

    async def wait(self, timeout: float) -> None:
        if self._event is None or timeout <= 0:
            await asyncio.sleep(max(0.0, timeout))
            return
        try:
            await asyncio.wait_for(self._event.wait(), timeout)
        except TimeoutError:
            pass
