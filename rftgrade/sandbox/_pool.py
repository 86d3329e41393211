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
import operator
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from rftgrade._executors import PythonCall, PythonCalls, PythonOutcome, PythonProgram
from rftgrade._rawitem import RawItem
from rftgrade.sandbox._backend import SandboxBackend
from rftgrade.sandbox._channel import PROTOCOL_VERSION, Channel, ChannelClosed
from rftgrade.sandbox._limits import Limits

__all__ = ["WorkerPool"]

LOAD_TIMEOUT = 120.0
GRACE = 2.0
# What the host keeps of a reply, whatever the worker sent (it cuts to the same).
MAX_STDOUT = 8 * 1024 + 100
MAX_DETAILS = 4 * 1024 + 100
MAX_DURATION_NS = 10**15  # about 11 days: beyond any time limit
MAX_REWARD = 1e300  # past this an int is not a float (and the worker sends floats)
_ids = itertools.count(1)


@dataclass(eq=False)
class _Slot:
    channel: Channel
    served: int = 0
    sending: asyncio.Lock = field(default_factory=asyncio.Lock)
    """Held while a chunk is written: a chunk sent ahead must not interleave with the one before."""
    successor: asyncio.Future[_Slot] | None = None
    """The worker that takes over when this one is recycled, started ahead of time."""


@dataclass
class _Chunk:
    indices: list[int]
    careful: bool
    """Re-running the rest of a failed chunk: the worker answers after every sample,
    so the next failure names its sample exactly."""


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
    started_ahead: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


_Token = _Slot | asyncio.Future[_Slot] | None

# What a worker is after answering a chunk.
_LIVE, _DEAD, _RECYCLED = object(), object(), object()


def chunk_bounds(n: int, workers: int, largest: int) -> list[tuple[int, int]]:
    """Cut ``n`` calls into chunks, ``(start, stop)``, that shrink towards the end.

    Big chunks keep workers busy between the host's replies; small last ones make
    the workers finish together (the last chunk of a batch is what its slowest
    worker is still grading while the others wait). Each chunk is a share of what is
    left, at most ``largest`` and at least ``_SMALLEST`` (less in a small batch, which
    is still shared by every worker).
    """
    bounds = []
    start = 0
    smallest = min(_SMALLEST, math.ceil(n / (2 * workers)))
    while start < n:
        size = max(smallest, min(largest, math.ceil((n - start) / (2 * workers))))
        bounds.append((start, min(n, start + size)))
        start += size
    return bounds


_SMALLEST = 32


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
        self.stats = _Stats()
        self.batches = 0
        """Batches running on this pool (its executor closes an evicted pool when none is)."""
        self.evicted = False
        # A token per worker: a live slot, None (start one when needed), or the task
        # starting the replacement of a worker recycled after `recycle_after` samples.
        self._idle: asyncio.Queue[_Token] = asyncio.Queue()
        for _ in range(self.size):
            self._idle.put_nowait(None)
        self._load_failure: _LoadFailure | None = None
        self._live: set[_Slot] = set()
        self._waiting = 0  # runners waiting for a worker: nothing is sent ahead while any wait
        self._successors: set[asyncio.Future[_Slot]] = set()

    # -- workers -------------------------------------------------------------
    async def _start(self) -> _Slot:
        channel = await self.backend.spawn(self.limits)
        self.stats.spawned += 1
        try:
            await channel.send(
                {
                    "op": "load",
                    "v": PROTOCOL_VERSION,
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
        except asyncio.CancelledError:  # the caller gave up: the half-started worker must not outlive it
            await channel.kill()
            raise
        if reply.get("v") != PROTOCOL_VERSION:
            await channel.kill()
            raise ChannelClosed(
                f"the sandbox worker speaks protocol v{reply.get('v')}, this rftgrade needs "
                f"v{PROTOCOL_VERSION}: rebuild the sandbox (`rftgrade sandbox build --backend "
                f"{self.backend.name}`)"
            )
        if not reply.get("ok"):
            await channel.kill()
            error = reply.get("error", {})
            self._load_failure = _LoadFailure(
                "runtime",
                str(error.get("type", "LoadError")),
                f"the grader failed to load: {error.get('details', '')}".strip(),
            )
            raise _GraderLoadError(self._load_failure)
        version = reply.get("marshal")
        channel.marshal_version = version if type(version) is int and version >= 2 else None
        slot = _Slot(channel)
        self._live.add(slot)
        return slot

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
        queue: asyncio.Queue[_Chunk] = asyncio.Queue()
        for start, stop in chunk_bounds(len(calls), self.size, self.chunk_size):
            queue.put_nowait(_Chunk(list(range(start, stop)), careful=False))
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
        failure = self._load_failure
        assert failure is not None
        return PythonOutcome(error=failure.kind, error_type=failure.error_type, details=failure.details)  # type: ignore[arg-type]

    async def _runner(
        self,
        queue: asyncio.Queue[_Chunk],
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
        chunk: _Chunk,
        queue: asyncio.Queue[_Chunk],
        calls: Sequence[PythonCall],
        outcomes: list[PythonOutcome | None],
        limit: float,
        deadline: float,
    ) -> tuple[_Token, list[_Chunk]]:
        """Grade ``chunk`` on ``slot``, and while the worker grades it, send it the
        batch's next chunk: the worker then starts on it at once instead of waiting
        for the host to read its answer and write the next chunk (a tenth of its time
        on 2 cores). Nothing is sent ahead while other batches wait for a worker, or
        when the worker is due to be recycled. A chunk sent ahead gets no answer when
        the one before it fails; it goes back to the queue unchanged.
        """
        sending: asyncio.Future[int | None] = asyncio.ensure_future(self._send(slot, chunk, calls, limit))
        while True:
            ahead: _Chunk | None = None
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
        successor = slot.successor = asyncio.ensure_future(self._start())
        self.stats.started_ahead += 1
        self._successors.add(successor)
        successor.add_done_callback(self._started_ahead)

    def _started_ahead(self, successor: asyncio.Future[_Slot]) -> None:
        self._successors.discard(successor)
        if not successor.cancelled():
            # Marks a failed start as seen: the batch that needs the worker still gets
            # the error (and flags its samples); the pool may close before any does.
            successor.exception()

    async def _send(
        self, slot: _Slot, chunk: _Chunk, calls: Sequence[PythonCall], limit: float
    ) -> int | None:
        """Write one chunk to the worker; its request id, or ``None`` if the worker is gone."""
        request_id = next(_ids)
        indices = chunk.indices
        first, last = indices[0], indices[-1]
        items: Sequence[Any]
        if isinstance(calls, PythonCalls) and last - first + 1 == len(indices):  # a run of calls
            samples, items = calls.samples[first : last + 1], calls.items[first : last + 1]
        else:
            samples, items = [calls[i].sample for i in indices], [calls[i].item for i in indices]
        message: dict[str, Any] = {
            "op": "grade",
            "id": request_id,
            "timeout": limit,
            "samples": samples,
            "careful": chunk.careful,
        }
        kinds = set(map(type, items))
        if RawItem in kinds and kinds != {RawItem}:
            items = [i.parse() if type(i) is RawItem else i for i in items]
            kinds = set(map(type, items))
        items = _share_items(items, message)
        if kinds == {RawItem}:
            # Items still in the JSON text they arrived in go as one JSON array: the
            # worker parses it in one call, the host never builds them.
            text = b"[" + b",".join([item.data for item in items]) + b"]"  # type: ignore[union-attr]
            message["items_json"] = text if slot.channel.marshal_version is not None else text.decode()
        else:
            message["items"] = items
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
        chunk: _Chunk,
        request_id: int,
        outcomes: list[PythonOutcome | None],
        limit: float,
        deadline: float,
    ) -> tuple[object, list[_Chunk]]:
        """Read a chunk's answers: (worker state, chunks to queue again)."""
        indices = chunk.indices
        answered = 0
        while answered < len(indices):
            started = time.perf_counter()
            wait = min(limit + GRACE, deadline - time.monotonic())
            try:
                async with asyncio.timeout(max(wait, 0.0)):
                    frame = await slot.channel.recv(None)
                rewards, durations, extras = _parse_results(frame, request_id, answered)
            except (TimeoutError, ChannelClosed) as exc:
                if time.monotonic() >= deadline:
                    # The batch's time is up: the rest stay unanswered (run() flags
                    # them) and this worker, still grading, is replaced.
                    return _DEAD, []
                return _DEAD, self._blame(slot, chunk, answered, exc, outcomes, limit, started)
            recycle = False
            count = min(len(rewards), len(indices) - answered)
            for k in range(count):
                extra = extras.get(k) if extras else None
                reward, duration = rewards[k], durations[k]
                if (
                    extra is None
                    and type(reward) is float
                    and type(duration) is int
                    and reward - reward == 0.0
                    and 0 <= duration <= MAX_DURATION_NS
                ):
                    # The common case, inline: a finite reward (x - x is nan for inf and nan).
                    outcomes[indices[answered + k]] = _new_outcome(
                        PythonOutcome, (reward, None, None, None, "", duration / 1e9)
                    )
                    continue
                outcomes[indices[answered + k]] = _outcome(reward, duration, extra)
                if extra is not None and extra.get("recycle") is not None:
                    recycle = True
            answered += count
            slot.served += count
            if recycle:
                # The worker exits by itself after this reply.
                await self._discard(slot)
                self.stats.recycled += 1
                rest = indices[answered:]
                return _RECYCLED, [_Chunk(rest, careful=chunk.careful)] if rest else []
        return _LIVE, []

    def _blame(
        self,
        slot: _Slot,
        chunk: _Chunk,
        answered: int,
        exc: Exception,
        outcomes: list[PythonOutcome | None],
        limit: float,
        started: float,
    ) -> list[_Chunk]:
        """A worker hung or died after ``answered`` replies (the caller discards it):
        flag the culprit, re-queue the rest."""
        rest = chunk.indices[answered:]
        if not chunk.careful:
            # Replies come in batches: any unanswered sample may be the culprit.
            # Re-run them on a fresh worker that answers after each one.
            return [_Chunk(rest, careful=True)]
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
        return [_Chunk(rest[1:], careful=True)] if len(rest) > 1 else []

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


def _parse_results(
    frame: dict[str, Any], request_id: int, answered: int
) -> tuple[list[Any], list[Any], dict[int, dict[str, Any]]]:
    """Check a ``results`` frame (the worker is untrusted) and split it into its columns."""
    rewards, durations = frame.get("rewards"), frame.get("durations")
    if (
        frame.get("id") != request_id
        or frame.get("start") != answered
        or not isinstance(rewards, list)
        or not isinstance(durations, list)
        or len(rewards) != len(durations)
    ):
        raise ChannelClosed(f"reply out of step: {frame.get('id')}/{frame.get('start')}")
    extras: dict[int, dict[str, Any]] = {}
    for pair in frame.get("extra") or ():
        if isinstance(pair, list) and len(pair) == 2 and type(pair[0]) is int and isinstance(pair[1], dict):
            extras[pair[0]] = pair[1]
    return rewards, durations, extras


def _share_items(items: Sequence[Any], message: dict[str, Any]) -> Sequence[Any]:
    """A chunk's distinct items; ``message["item_of"]`` then maps each sample to its item.

    GRPO grades a group of samples (16 is common) against one prompt's item: sent
    once per chunk, the worker parses (and the host encodes) a sixteenth of them.
    Items are the same when they are the same object or the same JSON text. The
    worker still hands every call an item no earlier call has changed.
    """
    # Built with C-level maps and zips: this runs for every chunk of every batch.
    ids = list(map(id, items))
    objects = dict(zip(ids, items, strict=True))  # each item object once
    if type(items[0]) is RawItem:
        if len(objects) == len(items):
            values = list(map(_data, items))
            if not any(map(operator.eq, values[:-1], values[1:])):
                # Trainers put a prompt's samples next to each other (TRL, verl and
                # OpenRLHF all do): with no neighbours alike, keying every text is not
                # worth its cost.
                return items
        # One copy of the text per object, not per row: a `groups` body gives all of
        # a group's rows one RawItem, which may be big.
        text = {key: bytes(item.data) for key, item in objects.items()}
        keys: list[Any] = list(map(text.__getitem__, ids))
    else:
        # One object anywhere in the chunk, not only next to itself: marshal would
        # hand the worker one shared object, which a grader could change for the rest.
        if len(objects) == len(items):
            return items
        keys = ids
    by_key = dict(zip(keys, items, strict=True))  # one item per distinct key, in first-seen order
    if len(by_key) == len(items):
        return items
    position = {key: index for index, key in enumerate(by_key)}
    message["item_of"] = list(map(position.__getitem__, keys))
    return list(by_key.values())


def _usable(successor: asyncio.Future[_Slot] | None) -> asyncio.Future[_Slot] | None:
    """A replacement started ahead, unless its start already failed (then the pool
    starts one afresh when it needs it, as it would have without starting ahead)."""
    if successor is not None and successor.done() and not successor.cancelled() and successor.exception():
        return None
    return successor


_data = operator.attrgetter("data")
_new_outcome = tuple.__new__  # skips NamedTuple's keyword handling: one outcome per sample


def _text(value: Any, limit: int) -> str:
    """A string field of a reply, cut here too: the worker is untrusted."""
    if type(value) is not str:
        return ""
    if len(value) <= limit:
        return value
    return value[:limit] + f"\n... [{len(value) - limit} more characters dropped by the host]"


def _invalid(why: str, seconds: float = 0.0) -> PythonOutcome:
    return PythonOutcome(
        error="runtime",
        error_type="InvalidReply",
        details=f"the sandbox sent an invalid reply for this sample: {why}",
        duration=seconds,
    )


def _outcome(reward: Any, duration: Any, extra: dict[str, Any] | None) -> PythonOutcome:
    """One sample's reply, checked field by field; a bad one fails that sample alone."""
    if type(duration) is not int or not 0 <= duration <= MAX_DURATION_NS:
        return _invalid(f"duration {str(duration)[:40]!r} is not a count of nanoseconds")
    seconds = duration / 1e9  # the worker reports nanoseconds
    if extra is None and type(reward) is float and math.isfinite(reward):  # the common case
        return _new_outcome(PythonOutcome, (reward, None, None, None, "", seconds))
    extra = extra or {}
    stdout = _text(extra.get("stdout"), MAX_STDOUT)
    kind = extra.get("error")
    if kind is None:
        if reward is None or type(reward) not in (float, int) or abs(reward) > MAX_REWARD:
            return _invalid(f"reward {str(reward)[:40]!r} is not a finite number", seconds)
        reward = float(reward)
        if not math.isfinite(reward):
            return _invalid(f"reward {reward!r} is not finite", seconds)
        return PythonOutcome(reward=reward, stdout=stdout, duration=seconds)
    return PythonOutcome(
        error="timeout" if kind == "timeout" else "runtime",
        error_type=_text(extra.get("error_type"), 200) or "Error",
        details=_text(extra.get("details"), MAX_DETAILS),
        stdout=stdout,
        duration=seconds,
    )
