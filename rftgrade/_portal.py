"""A private event loop on a daemon thread, so sync callers keep warm async pools.

Sandbox pools and HTTP clients belong to one event loop; calling ``asyncio.run``
per batch would build and tear them down every time. Every grader therefore runs
its async work on this one long-lived loop, from sync and async callers alike.
"""

from __future__ import annotations

import asyncio
import atexit
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

__all__ = ["Portal", "get_portal"]

T = TypeVar("T")


class Portal:
    """Runs coroutines on a background event loop."""

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="rftgrade-loop", daemon=True)
        self._thread.start()

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        return self._loop

    def call(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the portal loop and wait for it (from a non-portal thread)."""
        if threading.current_thread() is self._thread:
            raise RuntimeError("Portal.call from the portal's own loop would deadlock; await instead")
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    async def acall(self, coro: Coroutine[Any, Any, T]) -> T:
        """Await ``coro`` on the portal loop from any other event loop."""
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self._loop:
            return await coro
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, self._loop))

    def close(self) -> None:
        if self._loop.is_running():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=5)


_PORTAL: Portal | None = None
_LOCK = threading.Lock()


def get_portal() -> Portal:
    """The process-wide portal, started on first use."""
    global _PORTAL
    with _LOCK:
        if _PORTAL is None:
            _PORTAL = Portal()
            atexit.register(_PORTAL.close)
        return _PORTAL
