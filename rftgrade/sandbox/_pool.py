"""Warm worker pools: one per (grader source, isolation level), reused across batches.

A batch is cut into chunks that idle workers pull from a queue. Each worker
streams one reply per sample, so when a sample hangs or kills its worker only
that sample is flagged: the worker is killed, a fresh one is started, and the
rest of its chunk goes back on the queue. Workers are recycled after
``recycle_after`` samples, after a crash and after any timeout; a timed-out
channel is never reused, so replies cannot fall out of step with requests.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from rftgrade._executors import PythonCall, PythonOutcome, PythonProgram
from rftgrade.sandbox._backend import SandboxBackend
from rftgrade.sandbox._channel import Channel, ChannelClosed
from rftgrade.sandbox._limits import Limits

__all__ = ["WorkerPool"]

LOAD_TIMEOUT = 120.0
GRACE = 2.0
_ids = itertools.count(1)


@dataclass(eq=False)
class _Slot:
    channel: Channel
    served: int = 0


@dataclass
class _Chunk:
    indices: list[int]
    singly: bool
    """Set when re-running samples one by one after a failed chunk."""


@dataclass
class _LoadFailure:
    kind: str  # "runtime" (the grader's fault) or "server" (the sandbox's)
    error_type: str
    details: str


@dataclass
class _Stats:
    spawned: int = 0
    recycled: int = 0
    crashed: int = 0
    timeouts: int = 0
    samples: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


class WorkerPool:
    """Workers of one backend, loaded with one grader source."""

    def __init__(
        self,
        backend: SandboxBackend,
        program: PythonProgram,
        *,
        isolation: str = "worker",
        size: int = 2,
        limits: Limits,
        recycle_after: int = 10_000,
        chunk_size: int = 64,
    ) -> None:
        self.backend = backend
        self.program = program
        self.isolation = isolation
        self.size = max(1, size)
        self.limits = limits
        self.recycle_after = recycle_after
        self.chunk_size = chunk_size
        self.stats = _Stats()
        self._idle: asyncio.Queue[_Slot | None] = asyncio.Queue()
        for _ in range(self.size):
            self._idle.put_nowait(None)
        self._load_failure: _LoadFailure | None = None
        self._live: set[_Slot] = set()

    # -- workers -------------------------------------------------------------
    async def _start(self) -> _Slot:
        channel = await self.backend.spawn(self.limits)
        self.stats.spawned += 1
        try:
            await channel.send(
                {
                    "op": "load",
                    "v": 1,
                    "source": self.program.source,
                    "isolation": self.isolation,
                    "limits": self.limits.for_worker(),
                    "own_pid_namespace": self.backend.own_pid_namespace,
                }
            )
            reply = await channel.recv(LOAD_TIMEOUT)
        except (ChannelClosed, TimeoutError, OSError) as exc:
            await channel.kill()
            raise ChannelClosed(f"worker did not start ({channel.describe_exit()}): {exc}") from exc
        if not reply.get("ok"):
            await channel.kill()
            error = reply.get("error", {})
            self._load_failure = _LoadFailure(
                "runtime",
                str(error.get("type", "LoadError")),
                f"the grader failed to load: {error.get('details', '')}".strip(),
            )
            raise _GraderLoadError(self._load_failure)
        slot = _Slot(channel)
        self._live.add(slot)
        return slot

    async def _discard(self, slot: _Slot) -> None:
        self._live.discard(slot)
        await slot.channel.kill()

    # -- grading ---------------------------------------------------------------
    async def run(self, calls: Sequence[PythonCall], timeout: float | None = None) -> list[PythonOutcome]:
        """Grade ``calls``; one outcome each, in order. Never raises for a bad sample."""
        limit = float(timeout or self.limits.timeout)
        outcomes: list[PythonOutcome | None] = [None] * len(calls)
        if self._load_failure is not None:
            return [self._failed_load() for _ in calls]
        chunk = max(1, min(self.chunk_size, math.ceil(len(calls) / self.size)))
        queue: asyncio.Queue[_Chunk] = asyncio.Queue()
        for start in range(0, len(calls), chunk):
            queue.put_nowait(_Chunk(list(range(start, min(start + chunk, len(calls)))), singly=False))
        runners = [
            asyncio.create_task(self._runner(queue, calls, outcomes, limit))
            for _ in range(min(self.size, queue.qsize()))
        ]
        try:
            await asyncio.gather(*runners)
        finally:
            for task in runners:
                task.cancel()
        self.stats.samples += len(calls)
        return [
            o
            if o is not None
            else PythonOutcome(error="server", error_type="lost", details="the sandbox lost this sample")
            for o in outcomes
        ]

    def _failed_load(self) -> PythonOutcome:
        failure = self._load_failure
        assert failure is not None
        return PythonOutcome(error=failure.kind, error_type=failure.error_type, details=failure.details)  # type: ignore[arg-type]

    async def _runner(
        self,
        queue: asyncio.Queue[_Chunk],
        calls: Sequence[PythonCall],
        outcomes: list[PythonOutcome | None],
        limit: float,
    ) -> None:
        while not queue.empty():
            chunk = queue.get_nowait()
            slot = await self._idle.get()
            try:
                if slot is None:
                    try:
                        slot = await self._start()
                    except _GraderLoadError:
                        for i in chunk.indices:
                            outcomes[i] = self._failed_load()
                        slot = None
                        continue
                    except (ChannelClosed, OSError) as exc:
                        for i in chunk.indices:
                            outcomes[i] = PythonOutcome(
                                error="server",
                                error_type="spawn_failed",
                                details=f"{self.backend.name}: {exc}",
                            )
                        slot = None
                        continue
                slot, leftover = await self._grade_chunk(slot, chunk, calls, outcomes, limit)
                for item in leftover:
                    queue.put_nowait(item)
            finally:
                self._idle.put_nowait(slot)

    async def _grade_chunk(
        self,
        slot: _Slot,
        chunk: _Chunk,
        calls: Sequence[PythonCall],
        outcomes: list[PythonOutcome | None],
        limit: float,
    ) -> tuple[_Slot | None, list[_Chunk]]:
        indices = chunk.indices
        request_id = next(_ids)
        payload = [{"sample": calls[i].sample, "item": calls[i].item} for i in indices]
        try:
            await slot.channel.send({"op": "grade", "id": request_id, "calls": payload, "timeout": limit})
        except (ChannelClosed, OSError):
            await self._discard(slot)
            self.stats.crashed += 1
            return None, [chunk]  # nothing was graded: retry the chunk on a fresh worker
        answered = 0
        while answered < len(indices):
            started = time.perf_counter()
            try:
                async with asyncio.timeout(limit + GRACE):
                    frame = await slot.channel.recv(None)
                results = frame.get("results")
                if (
                    frame.get("id") != request_id
                    or frame.get("start") != answered
                    or not isinstance(results, list)
                ):
                    raise ChannelClosed(f"reply out of step: {frame.get('id')}/{frame.get('start')}")
            except (TimeoutError, ChannelClosed) as exc:
                return None, await self._blame(slot, chunk, answered, exc, outcomes, limit, started)
            recycle = False
            for reply in results[: len(indices) - answered]:
                outcomes[indices[answered]] = _outcome(reply)
                answered += 1
                slot.served += 1
                recycle = recycle or bool(reply.get("recycle"))
            if recycle:
                # The worker exits by itself after this reply.
                await self._discard(slot)
                self.stats.recycled += 1
                rest = indices[answered:]
                return None, [_Chunk(rest, singly=chunk.singly)] if rest else []
        if slot.served >= self.recycle_after:
            await self._discard(slot)
            self.stats.recycled += 1
            return None, []
        return slot, []

    async def _blame(
        self,
        slot: _Slot,
        chunk: _Chunk,
        answered: int,
        exc: Exception,
        outcomes: list[PythonOutcome | None],
        limit: float,
        started: float,
    ) -> list[_Chunk]:
        """A worker hung or died after ``answered`` replies: flag the culprit, re-queue the rest."""
        await self._discard(slot)
        rest = chunk.indices[answered:]
        if not chunk.singly and len(rest) > 1:
            # Replies come in batches: any unanswered sample may be the culprit.
            # Re-run each alone so that only the guilty one is flagged.
            return [_Chunk([i], singly=True) for i in rest]
        index = rest[0]
        if isinstance(exc, TimeoutError):
            self.stats.timeouts += 1
            outcomes[index] = PythonOutcome(
                error="timeout",
                error_type="TimeoutError",
                details=f"grade() ran longer than {limit:g}s; its worker was killed",
                duration=time.perf_counter() - started,
            )
        else:
            self.stats.crashed += 1
            outcomes[index] = PythonOutcome(
                error="runtime",
                error_type="WorkerDied",
                details=f"the grading process died while grading this sample ({slot.channel.describe_exit()}): {exc}",
                duration=time.perf_counter() - started,
            )
        return [_Chunk([i], singly=True) for i in rest[1:]]

    async def aclose(self) -> None:
        for slot in list(self._live):
            await self._discard(slot)

    def snapshot(self) -> dict[str, Any]:
        return {
            "backend": self.backend.name,
            "isolation": self.isolation,
            "size": self.size,
            "live_workers": len(self._live),
            **self.stats.__dict__,
        }


class _GraderLoadError(Exception):
    def __init__(self, failure: _LoadFailure) -> None:
        super().__init__(failure.details)
        self.failure = failure


def _outcome(reply: dict[str, Any]) -> PythonOutcome:
    stdout = str(reply.get("stdout") or "")
    duration = float(reply.get("duration") or 0.0)
    if "reward" in reply and reply.get("error") is None:
        return PythonOutcome(reward=float(reply["reward"]), stdout=stdout, duration=duration)
    kind = reply.get("error")
    return PythonOutcome(
        error="timeout" if kind == "timeout" else "runtime",
        error_type=str(reply.get("error_type") or "Error"),
        details=str(reply.get("details") or ""),
        stdout=stdout,
        duration=duration,
    )
