"""Gather single-sample reward calls that arrive together into one batch.

verl's reward loop and verifiers score one sample per call, many at once; graded
one by one, each would be its own request (or sandbox round trip). Calls made on
one event loop within :data:`WINDOW` seconds of the first are graded as one batch.
"""

from __future__ import annotations

import asyncio
import weakref
from typing import Any

from rftgrade.integrations._client import RewardSource, grade_rows

__all__ = ["WINDOW", "Gatherer"]

WINDOW = 0.005
"""Seconds a batch stays open after its first call."""


class _Pending:
    def __init__(self) -> None:
        self.rows: list[tuple[dict[str, Any], asyncio.Future[dict[str, Any]]]] = []
        self.flush: asyncio.TimerHandle | None = None
        self.tasks: set[asyncio.Future[None]] = set()  # the loop holds tasks only weakly


class Gatherer:
    """Grades rows for one :class:`RewardSource`, batching concurrent calls per event loop."""

    def __init__(self, source: RewardSource, window: float = WINDOW) -> None:
        self.source = source
        self.window = window
        self._loops: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Pending] = (
            weakref.WeakKeyDictionary()
        )

    async def grade(self, row: dict[str, Any]) -> dict[str, Any]:
        """The response dict for ``row``, graded with the calls made alongside it."""
        loop = asyncio.get_running_loop()
        pending = self._loops.get(loop)
        if pending is None:
            pending = self._loops[loop] = _Pending()
        future: asyncio.Future[dict[str, Any]] = loop.create_future()
        pending.rows.append((row, future))
        if pending.flush is None:
            pending.flush = loop.call_later(self.window, self._dispatch, pending)
        return await future

    def _dispatch(self, pending: _Pending) -> None:
        batch = list(pending.rows)
        pending.rows.clear()
        pending.flush = None
        if batch:
            task = asyncio.ensure_future(self._run(batch))
            pending.tasks.add(task)
            task.add_done_callback(pending.tasks.discard)

    async def _run(self, batch: list[tuple[dict[str, Any], asyncio.Future[dict[str, Any]]]]) -> None:
        results = await grade_rows(self.source, [row for row, _ in batch])
        for (_, future), result in zip(batch, results, strict=True):
            if not future.done():
                future.set_result(result)
