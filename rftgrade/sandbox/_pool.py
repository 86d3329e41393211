"""Warm worker pools: one per (grader source, isolation level), reused across batches.

A batch is cut into chunks that idle workers pull from a queue. A worker
answers a chunk in frames as it goes; when a sample hangs or kills its worker,
the worker is killed and the unanswered rest of its chunk is re-run
"carefully" on a fresh one (a frame per sample), so that only the guilty
sample is flagged and every other sample gets its score. Workers are recycled after
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
from rftgrade.sandbox._blame import PoolStats, after_out_of_step, after_silence
from rftgrade.sandbox._channel import Channel, ChannelClosed
from rftgrade.sandbox._chunks import Chunk, chunk_bounds
from rftgrade.sandbox._limits import Limits
from rftgrade.sandbox._protocol import (
    PROGRESS_SECONDS,
    GraderLoadError,
    LoadFailure,
    OutOfStep,
    apply_results,
    grade_message,
    load_message,
    parse_loaded,
    parse_results,
)

__all__ = ["WorkerPool"]

LOAD_TIMEOUT = 120.0
GRACE = 2.0
_ids = itertools.count(1)


@dataclass(eq=False)
class _Slot:
    channel: Channel
    served: int = 0
    sending: asyncio.Lock = field(default_factory=asyncio.Lock)
    """Held while a chunk is written: a chunk sent ahead must not interleave with the one before."""
    successor: asyncio.Future[_Slot] | None = None
    """The worker that takes over when this one is recycled, started ahead of time."""
    last: tuple[int, Chunk, list[PythonOutcome | None]] | None = None
    """The request this worker answered in full last, its chunk and its batch's
    outcomes: a reply for it arriving later shows that a forged frame answered it."""


_Token = _Slot | asyncio.Future[_Slot] | None

# What a worker is after answering a chunk.
_LIVE, _DEAD, _RECYCLED = object(), object(), object()


async def _settle(future: asyncio.Future[Any]) -> None:
    """Wait for a cancelled send to a worker that is being discarded; its outcome
    (cancelled, failed or done) no longer matters."""
    await asyncio.gather(future, return_exceptions=True)


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
        recycle_after: int = 100_000,
        chunk_size: int = 1024,
    ) -> None:
        self.backend = backend
        self.program = program
        self.isolation = isolation
        self.size = max(1, size)
        self.limits = limits
        self.recycle_after = recycle_after
        self.chunk_size = chunk_size
        self.stats = PoolStats()
        self.batches = 0
        """Batches running on this pool (its executor closes an evicted pool when none is)."""
        self.evicted = False
        # A token per worker: a live slot, None (start one when needed), or the task
        # starting the replacement of a worker recycled after `recycle_after` samples.
        self._idle: asyncio.Queue[_Token] = asyncio.Queue()
        for _ in range(self.size):
            self._idle.put_nowait(None)
        self._load_failure: LoadFailure | None = None
        self._live: set[_Slot] = set()
        self._waiting = 0  # runners waiting for a worker: nothing is sent ahead while any wait
        self._successors: set[asyncio.Future[_Slot]] = set()

    # -- workers -------------------------------------------------------------
    async def _start(self) -> _Slot:
        channel = await self.backend.spawn(self.limits)
        self.stats.spawned += 1
        try:
            await channel.send(
                load_message(
                    self.program.source,
                    self.isolation,
                    self._worker_limits(),
                    self.backend.own_pid_namespace,
                )
            )
            reply = await channel.recv(LOAD_TIMEOUT)
        except (ChannelClosed, TimeoutError, OSError) as exc:
            await channel.kill()
            raise ChannelClosed(f"worker did not start ({channel.describe_exit()}): {exc}") from exc
        except asyncio.CancelledError:  # the caller gave up: the half-started worker must not outlive it
            await channel.kill()
            raise
        try:
            channel.marshal_version = parse_loaded(reply, self.backend.name)
        except GraderLoadError as exc:
            await channel.kill()
            self._load_failure = exc.failure
            raise
        except ChannelClosed:
            await channel.kill()
            raise
        slot = _Slot(channel)
        self._live.add(slot)
        return slot

    def start_all(self) -> None:
        """Start, in the background, every worker not started yet.

        A run that knows work is coming (``rftgrade grade``, a trainer before its
        first step) pays the starts while it reads its first rows. A start that
        fails is reported to the batch that takes its worker, as a start on demand is.
        """
        tokens = [self._idle.get_nowait() for _ in range(self._idle.qsize())]
        for token in tokens:
            self._idle.put_nowait(self._start_ahead() if token is None else token)

    def _worker_limits(self) -> dict[str, Any]:
        limits = self.limits.for_worker()
        if not self.backend.rlimit_nproc:
            limits.pop("nproc", None)
        return limits

    async def _discard(self, slot: _Slot) -> None:
        self._live.discard(slot)
        await slot.channel.kill()

    # -- grading ---------------------------------------------------------------
    async def run(
        self, calls: Sequence[PythonCall], timeout: float | None = None, batch_timeout: float | None = None
    ) -> list[PythonOutcome]:
        """Grade ``calls``; one outcome each, in order. Never raises for a bad sample.

        Past ``batch_timeout`` seconds the samples not yet answered fail as timeouts
        (``unresponsive_reward_error``) and the workers grading them are replaced."""
        limit = float(timeout or self.limits.timeout)
        deadline = time.monotonic() + batch_timeout if batch_timeout else math.inf
        outcomes: list[PythonOutcome | None] = [None] * len(calls)
        if self._load_failure is not None:
            return [self._failed_load() for _ in calls]
        queue: asyncio.Queue[Chunk] = asyncio.Queue()
        # `batches` counts this one: more means others share the workers (see chunk_bounds).
        alone = self.batches <= 1
        for start, stop in chunk_bounds(len(calls), self.size, self.chunk_size, alone=alone):
            queue.put_nowait(Chunk(list(range(start, stop)), careful=False))
        self.stats.chunks += queue.qsize()
        runners = [
            asyncio.create_task(self._runner(queue, calls, outcomes, limit, deadline))
            for _ in range(min(self.size, queue.qsize()))
        ]
        try:
            await asyncio.gather(*runners)
        finally:
            for task in runners:
                task.cancel()
        self.stats.samples += len(calls)
        lost = PythonOutcome(error="server", error_type="lost", details="the sandbox lost this sample")
        if time.monotonic() >= deadline:
            lost = PythonOutcome(
                error="timeout",
                error_type="BatchTimeout",
                details=f"the batch's time limit ({batch_timeout:g}s) passed before this sample was answered",
            )
        return [o if o is not None else lost for o in outcomes]

    def _failed_load(self) -> PythonOutcome:
        assert self._load_failure is not None
        return self._load_failure.outcome()

    async def _runner(
        self,
        queue: asyncio.Queue[Chunk],
        calls: Sequence[PythonCall],
        outcomes: list[PythonOutcome | None],
        limit: float,
        deadline: float,
    ) -> None:
        while not queue.empty() and time.monotonic() < deadline:
            chunk = queue.get_nowait()
            self._waiting += 1
            try:
                token = await self._idle.get()
            finally:
                self._waiting -= 1
            slot: _Token = None
            try:
                if time.monotonic() >= deadline:  # waited past the batch's time: hand the token back
                    slot = token
                    continue
                if isinstance(token, _Slot):
                    slot = token
                else:
                    try:
                        # shield: a cancelled batch must not cancel a replacement half-started.
                        slot = await (asyncio.shield(token) if token is not None else self._start())
                    except GraderLoadError:
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
                slot, leftover = await self._serve(slot, chunk, queue, calls, outcomes, limit, deadline)
                for item in leftover:
                    queue.put_nowait(item)
            finally:
                if slot is None and isinstance(token, asyncio.Future) and not token.done():
                    # Cancelled while a replacement was starting: hand on the start itself,
                    # or its worker would live on outside the pool.
                    self._idle.put_nowait(token)
                else:
                    self._idle.put_nowait(slot)

    async def _serve(
        self,
        slot: _Slot,
        chunk: Chunk,
        queue: asyncio.Queue[Chunk],
        calls: Sequence[PythonCall],
        outcomes: list[PythonOutcome | None],
        limit: float,
        deadline: float,
    ) -> tuple[_Token, list[Chunk]]:
        """Grade ``chunk`` on ``slot``, and while the worker grades it, send it the
        batch's next chunk: the worker then starts on it at once instead of waiting
        for the host to read its answer and write the next chunk (a tenth of its time
        on 2 cores). Nothing is sent ahead while other batches wait for a worker, or
        when the worker is due to be recycled. A chunk sent ahead gets no answer when
        the one before it fails; it goes back to the queue unchanged.
        """
        sending: asyncio.Future[int | None] = asyncio.ensure_future(self._send(slot, chunk, calls, limit))
        while True:
            ahead: Chunk | None = None
            ahead_sending: asyncio.Future[int | None] | None = None
            if (
                not queue.empty()
                and self._waiting == 0
                and slot.served + len(chunk.indices) < self.recycle_after
            ):
                ahead = queue.get_nowait()
                ahead_sending = asyncio.ensure_future(self._send(slot, ahead, calls, limit))
            request_id = await sending
            if request_id is None:
                state, leftover = _DEAD, [chunk]
            else:
                state, leftover = await self._collect(slot, chunk, request_id, outcomes, limit, deadline)
                if state is _LIVE:
                    slot.last = (request_id, chunk, outcomes)
                    self._start_successor(slot)
            if ahead is not None and ahead_sending is not None:
                if state is _LIVE:
                    chunk, sending = ahead, ahead_sending
                    continue
                # The worker is gone (or going): the chunk sent ahead was never answered.
                # Stop writing it first: a hung worker would never read it.
                ahead_sending.cancel()
                await _settle(ahead_sending)
                leftover = [*leftover, ahead]
            if state is _DEAD:
                await self._discard(slot)
                return _usable(slot.successor), leftover
            if state is _RECYCLED:
                return _usable(slot.successor), leftover
            if slot.served >= self.recycle_after:
                await self._discard(slot)
                self.stats.recycled += 1
                # A planned recycle: its replacement was started ahead (or starts now),
                # off the next chunk's path.
                return _usable(slot.successor) or asyncio.ensure_future(self._start()), leftover
            return slot, leftover

    def _start_successor(self, slot: _Slot) -> None:
        """Start the worker that will replace ``slot`` once it has graded its last fifth
        of ``recycle_after`` samples: a Docker worker takes ~0.4 s of the engine's time
        to start, which a batch would otherwise wait for."""
        if slot.successor is not None or self.recycle_after - slot.served > self.recycle_after // 5:
            return
        slot.successor = self._start_ahead()

    def _start_ahead(self) -> asyncio.Future[_Slot]:
        """A worker started before a batch needs it (aclose waits for it to finish starting)."""
        start = asyncio.ensure_future(self._start())
        self.stats.started_ahead += 1
        self._successors.add(start)
        start.add_done_callback(self._started_ahead)
        return start

    def _started_ahead(self, successor: asyncio.Future[_Slot]) -> None:
        self._successors.discard(successor)
        if not successor.cancelled():
            # Marks a failed start as seen: the batch that needs the worker still gets
            # the error (and flags its samples); the pool may close before any does.
            successor.exception()

    async def _send(self, slot: _Slot, chunk: Chunk, calls: Sequence[PythonCall], limit: float) -> int | None:
        """Write one chunk to the worker; its request id, or ``None`` if the worker is gone."""
        request_id = next(_ids)
        message = grade_message(
            request_id, limit, calls, chunk.indices, chunk.careful, slot.channel.marshal_version
        )
        try:
            async with slot.sending:
                await slot.channel.send(message)
        except (ChannelClosed, OSError):
            self.stats.crashed += 1
            return None
        return request_id

    async def _collect(
        self,
        slot: _Slot,
        chunk: Chunk,
        request_id: int,
        outcomes: list[PythonOutcome | None],
        limit: float,
        deadline: float,
    ) -> tuple[object, list[Chunk]]:
        """Read a chunk's answers: (worker state, chunks to queue again)."""
        indices = chunk.indices
        answered = 0
        running = False  # the last frame said the first unanswered sample has run PROGRESS_SECONDS
        while answered < len(indices):
            started = time.perf_counter()
            # After a progress frame the sample has already run a second of its limit.
            wait = min(limit + GRACE - (PROGRESS_SECONDS if running else 0.0), deadline - time.monotonic())
            try:
                async with asyncio.timeout(max(wait, 0.0)):
                    frame = await slot.channel.recv(None)
                results = parse_results(frame, request_id, answered, len(indices), chunk.careful)
            except OutOfStep as exc:
                return _DEAD, after_out_of_step(self.stats, slot, chunk, answered, exc, outcomes)
            except (TimeoutError, ChannelClosed) as exc:
                if time.monotonic() >= deadline:
                    # The batch's time is up: the rest stay unanswered (run() flags
                    # them) and this worker, still grading, is replaced.
                    return _DEAD, []
                timed_out = isinstance(exc, TimeoutError)
                named: int | None = answered if timed_out and running else None
                if timed_out and not running:
                    named = await self._started_last(slot, request_id, answered, len(indices))
                return _DEAD, after_silence(
                    self.stats, slot, chunk, answered, exc, outcomes, limit, started, named
                )
            recycle = apply_results(results, indices, answered, outcomes)
            count = len(results.rewards)
            answered += count
            slot.served += count
            running = results.running is not None
            if recycle:
                # The worker exits by itself after this reply.
                await self._discard(slot)
                self.stats.recycled += 1
                rest = indices[answered:]
                return _RECYCLED, [Chunk(rest, careful=chunk.careful)] if rest else []
        return _LIVE, []

    async def _started_last(self, slot: _Slot, request_id: int, answered: int, size: int) -> int | None:
        """The sample a silent worker started last, from its progress page (a worker
        blocked in C code holding the GIL sends no progress frame). Only a worker that
        grades in its own process writes one: a forked sample could forge it."""
        position = await slot.channel.started_last(request_id) if self.isolation == "worker" else None
        return position if position is not None and answered <= position < size else None

    async def aclose(self) -> None:
        # Replacements started ahead: let them finish starting, then stop them below.
        await asyncio.gather(*self._successors, return_exceptions=True)
        while not self._idle.empty():
            token = self._idle.get_nowait()
            if isinstance(token, asyncio.Future):
                try:  # a replacement being started: let it finish, then stop it below
                    await token
                except Exception:  # a failed start left nothing to stop
                    pass
        # Together: a docker worker's removal waits for the engine (~0.2 s each), and a
        # CLI run waits for its pools to close before it exits.
        await asyncio.gather(*(self._discard(slot) for slot in list(self._live)))

    def snapshot(self) -> dict[str, Any]:
        return {
            "backend": self.backend.name,
            "isolation": self.isolation,
            "size": self.size,
            "live_workers": len(self._live),
            **self.stats.__dict__,
        }


def _usable(successor: asyncio.Future[_Slot] | None) -> asyncio.Future[_Slot] | None:
    """A replacement started ahead, unless its start already failed (then the pool
    starts one afresh when it needs it, as it would have without starting ahead)."""
    if successor is not None and successor.done() and not successor.cancelled() and successor.exception():
        return None
    return successor
