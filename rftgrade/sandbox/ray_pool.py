"""``RayExecutor``: python graders on a Ray cluster, behind the :class:`~rftgrade.PythonExecutor` interface.

One pool actor per node (or per ``cpus_per_actor`` CPUs) owns a local sandbox
pool (:class:`~rftgrade.sandbox.SandboxExecutor`, docker or bwrap as on one
machine) sized to the CPUs Ray gives it. A batch is cut into chunks that the
actors pull from one queue, ``inflight`` at a time each, so a fast node takes
more and none waits on the driver between chunks. Ray does placement, failure
detection and transport; nothing here speaks its own cluster protocol.

Faults lose nothing: a chunk whose actor died (its node went, or a grader killed
it) goes back to the queue for the survivors; a chunk that killed actors twice
is cut into single samples, so only the sample that kills again is flagged. The
driver lists the nodes every ``refresh_interval`` seconds, starts an actor on a
node that joined (or on a live node whose actor died), and when no actor is left
and none can start, flags the rest of the batch ``python_grader_server_error``
with the cause instead of waiting.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from rftgrade._exceptions import BackendUnavailableError
from rftgrade._executors import PythonCall, PythonCalls, PythonOutcome, PythonProgram
from rftgrade.sandbox._chunks import chunk_bounds
from rftgrade.sandbox._limits import Limits
from rftgrade.sandbox._pool import GRACE, LOAD_TIMEOUT
from rftgrade.sandbox._ray_actor import PoolActor, error_summary, import_ray

__all__ = ["RayExecutor"]

KILLS_BEFORE_CAREFUL = 2
"""Actor deaths a chunk may cause before it is graded one sample at a time."""


@dataclass(eq=False)
class _Actor:
    handle: Any
    node_id: str
    workers: int
    programs: set[str] = field(default_factory=set)
    """Digests whose source this actor was sent (so later chunks carry only the digest)."""
    alive: bool = True
    graded: int = 0
    chunks: int = 0
    busy: int = 0
    """Chunks in flight on this actor."""
    exclusive: bool = False
    """A careful chunk is in flight: nothing shares the actor with it, so that if the
    actor dies, the death is that one sample's doing."""
    settled: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass
class _Chunk:
    start: int
    stop: int
    kills: int = 0
    careful: bool = False


class _Batch:
    """One ``run`` call: its queue of chunks, its outcomes, who is working on it."""

    def __init__(self, calls: PythonCalls, limit: float) -> None:
        self.calls = calls
        self.limit = limit
        self.outcomes: list[PythonOutcome | None] = [None] * len(calls)
        self.queue: deque[_Chunk] = deque()
        self.in_flight = 0
        self.left = len(calls)
        self.changed = asyncio.Event()

    def done(self) -> bool:
        return self.left == 0

    def fill(self, chunk: _Chunk, outcomes: Sequence[PythonOutcome]) -> None:
        for i, outcome in zip(range(chunk.start, chunk.stop), outcomes, strict=True):
            if self.outcomes[i] is None:
                self.left -= 1
            self.outcomes[i] = outcome
        self.changed.set()

    def flag_rest(
        self, error_type: str, details: str, error: Literal["runtime", "server", "timeout"] = "server"
    ) -> None:
        """Flag every sample still unanswered (queued or in flight)."""
        self.queue.clear()
        outcome = PythonOutcome(error=error, error_type=error_type, details=details)
        for i, current in enumerate(self.outcomes):
            if current is None:
                self.outcomes[i] = outcome
        self.left = 0
        self.changed.set()

    async def take(self) -> _Chunk | None:
        """The next chunk; waits while chunks in flight may still come back; ``None`` when done."""
        while not self.done():
            if self.queue:
                self.in_flight += 1
                return self.queue.popleft()
            self.changed.clear()
            await self.changed.wait()
        return None


class RayExecutor:
    """Runs python graders on a Ray cluster's nodes.

    Args:
        address: ``auto`` (the cluster this process belongs to, or ``$RAY_ADDRESS``)
            or ``HOST:PORT`` of its GCS. An already connected driver (``ray.init``
            done, as in a verl job) is used as it is.
        backend: sandbox backend on every node (``auto`` is chosen per node).
        cpus_per_actor: CPUs each pool actor asks Ray for (and workers it runs);
            ``None``: one actor per node taking all of its CPUs.
        chunk_size: largest chunk sent to an actor.
        inflight: chunks each actor holds at once (one grading, one arriving).
        start_timeout: seconds an actor may take to start before its node is skipped.
        refresh_interval: seconds between looks for nodes that joined or actors that died.
        runtime_env: Ray runtime env for the actors (e.g. ``{"env_vars": {"PYTHONPATH": ...}}``).

    Raises:
        BackendUnavailableError: Ray is not installed, or no cluster answers at ``address``.
    """

    def __init__(
        self,
        address: str = "auto",
        *,
        backend: str = "auto",
        limits: Limits | None = None,
        isolation: str | None = None,
        recycle_after: int = 100_000,
        cpus_per_actor: int | None = None,
        chunk_size: int = 256,
        inflight: int = 2,
        start_timeout: float = 60.0,
        refresh_interval: float = 2.0,
        runtime_env: dict[str, Any] | None = None,
    ) -> None:
        self._ray = ray = import_ray()
        if cpus_per_actor is not None and cpus_per_actor < 1:
            raise ValueError(f"cpus_per_actor must be >= 1, got {cpus_per_actor}")
        self.address = address
        self.backend = backend
        self.name = f"ray:{backend}"
        self.isolated = backend != "process"
        self.limits = limits or Limits.from_env()
        self.isolation = isolation
        self.recycle_after = recycle_after
        self.cpus_per_actor = cpus_per_actor
        self.chunk_size = max(1, chunk_size)
        self.inflight = max(1, inflight)
        self.start_timeout = start_timeout
        self.refresh_interval = refresh_interval
        self.runtime_env = runtime_env
        self._owns_ray = False
        if not ray.is_initialized():
            try:
                ray.init(address=address, log_to_driver=False, logging_level="warning")
            except (ConnectionError, RuntimeError, ValueError) as exc:
                raise BackendUnavailableError(
                    f"--ray {address}: no Ray cluster answers there ({exc}); start one with "
                    "`ray start --head`, or give the head's HOST:PORT"
                ) from exc
            self._owns_ray = True
        self._remote = ray.remote(PoolActor)
        self._actors: list[_Actor] = []
        self._pending: dict[str, asyncio.Task[None]] = {}  # node id -> actor starting there
        self._skip_until: dict[str, float] = {}
        self._skip_reason: dict[str, str] = {}
        self._last_loss = ""
        self._last_refresh = 0.0
        self._batches: set[_Batch] = set()
        self.counters = {"chunks": 0, "requeued": 0, "careful_chunks": 0, "actors_lost": 0, "sources_sent": 0}

    # -- actors --------------------------------------------------------------
    def _live(self) -> list[_Actor]:
        return [a for a in self._actors if a.alive]

    def _refresh(self) -> None:
        """Start an actor wherever a node has room for one and has none (joined, or lost it)."""
        self._last_refresh = time.monotonic()
        now = time.monotonic()
        for node in self._ray.nodes():
            node_id = node.get("NodeID", "")
            if not node.get("Alive") or node_id in self._pending or self._skip_until.get(node_id, 0) > now:
                continue
            cpus = int(node.get("Resources", {}).get("CPU", 0))
            per = self.cpus_per_actor or cpus
            wanted = cpus // per if per else 0
            have = sum(1 for a in self._live() if a.node_id == node_id)
            if wanted > have:
                self._pending[node_id] = asyncio.ensure_future(self._start(node_id, per, wanted - have))

    async def _start(self, node_id: str, cpus: int, count: int) -> None:
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        options: dict[str, Any] = {
            "num_cpus": cpus,
            "max_restarts": 0,  # the driver replaces lost actors itself, with their sources
            "scheduling_strategy": NodeAffinitySchedulingStrategy(node_id, soft=False),
        }
        if self.runtime_env is not None:
            options["runtime_env"] = self.runtime_env
        try:
            for _ in range(count):
                handle = self._remote.options(**options).remote(
                    self.backend, cpus, self.limits, self.isolation, self.recycle_after
                )
                try:
                    async with asyncio.timeout(self.start_timeout):
                        info = await handle.info.remote()
                except Exception as exc:
                    self._ray.kill(handle)
                    if isinstance(exc, TimeoutError):
                        reason = f"did not start within {self.start_timeout:g}s"
                    else:
                        reason = error_summary(exc)
                    # Not again for a while: a node without a sandbox stays without one.
                    self._skip_until[node_id] = time.monotonic() + max(30.0, self.start_timeout)
                    self._skip_reason[node_id] = reason
                    self._last_loss = f"the pool actor on node {node_id[:12]} failed to start: {reason}"
                    return
                self._actors.append(_Actor(handle, info["node_id"], int(info["workers"])))
        finally:
            self._pending.pop(node_id, None)
            for batch in self._batches:
                batch.changed.set()

    def _lose(self, actor: _Actor, exc: BaseException) -> None:
        if not actor.alive:
            return
        actor.alive = False
        actor.settled.set()  # wakes feeders waiting to claim it
        self.counters["actors_lost"] += 1
        self._last_loss = f"the pool actor on node {actor.node_id[:12]} was lost: {error_summary(exc)}"
        try:
            self._ray.kill(actor.handle)
        except Exception:  # already gone
            pass
        self._actors.remove(actor)

    # -- grading ---------------------------------------------------------------
    def isolation_for(self, program: PythonProgram) -> tuple[str, str]:
        """The isolation ``program`` runs in on the nodes, and why (as a local pool would choose)."""
        from rftgrade.sandbox._executor import isolation_choice

        return isolation_choice(program, self.isolation)

    async def run(
        self,
        program: PythonProgram,
        calls: Sequence[PythonCall],
        *,
        timeout: float | None = None,
        batch_timeout: float | None = None,
    ) -> list[PythonOutcome]:
        """Grade every call on the cluster; one outcome each, in order. Never raises for a bad sample.

        ``batch_timeout`` bounds the whole call: samples unanswered then fail as timeouts
        (``unresponsive_reward_error``), as on a local pool.
        """
        if not len(calls):
            return []
        if not isinstance(calls, PythonCalls):
            calls = PythonCalls([c.sample for c in calls], [c.item for c in calls])
        batch = _Batch(calls, float(timeout or self.limits.timeout))
        if not self._live() or time.monotonic() - self._last_refresh > self.refresh_interval:
            self._refresh()
        workers = sum(a.workers for a in self._live()) or len(self._pending) or 1
        for start, stop in chunk_bounds(len(calls), workers, self.chunk_size):
            batch.queue.append(_Chunk(start, stop))
        self.counters["chunks"] += len(batch.queue)
        self._batches.add(batch)
        feeders: dict[_Actor, list[asyncio.Task[None]]] = {}
        deadline = time.monotonic() + batch_timeout if batch_timeout else None
        try:
            while not batch.done():
                if deadline is not None and time.monotonic() >= deadline:
                    batch.flag_rest(
                        "BatchTimeout", f"the batch's {batch_timeout:g} s deadline passed", error="timeout"
                    )
                    break
                for actor in self._live():
                    if actor not in feeders:
                        feeders[actor] = [
                            asyncio.ensure_future(self._feed(actor, batch, program))
                            for _ in range(self.inflight)
                        ]
                if not self._live() and not self._pending:
                    self._refresh()
                    if not self._pending:
                        batch.flag_rest("no_ray_actor", self._no_actor_reason())
                        break
                batch.changed.clear()
                wait = self.refresh_interval
                if deadline is not None:
                    wait = max(0.0, min(wait, deadline - time.monotonic()))
                try:
                    async with asyncio.timeout(wait):
                        await batch.changed.wait()
                except TimeoutError:
                    pass
                if time.monotonic() - self._last_refresh > self.refresh_interval:
                    self._refresh()
        finally:
            self._batches.discard(batch)
            for tasks in feeders.values():
                for task in tasks:
                    task.cancel()
            await asyncio.gather(*(t for ts in feeders.values() for t in ts), return_exceptions=True)
        return [
            o
            if o is not None
            else PythonOutcome(error="server", error_type="lost", details="the cluster lost this sample")
            for o in batch.outcomes
        ]

    def _no_actor_reason(self) -> str:
        why = self._last_loss or "the cluster has no node with CPUs for a pool actor"
        skipped = "; ".join(f"node {n[:12]}: {r}" for n, r in self._skip_reason.items())
        return f"no Ray pool actor is left to grade on ({why})" + (f"; skipped {skipped}" if skipped else "")

    async def _feed(self, actor: _Actor, batch: _Batch, program: PythonProgram) -> None:
        """Pull chunks for one actor until the batch is done or the actor is gone."""
        while actor.alive:
            chunk = await batch.take()
            if chunk is None:
                return
            if not await self._claim(actor, chunk):  # died while this feeder waited
                batch.in_flight -= 1
                batch.queue.appendleft(chunk)
                batch.changed.set()
                return
            try:
                await self._grade_on(actor, batch, program, chunk)
            finally:
                actor.busy -= 1
                actor.exclusive = False if chunk.careful else actor.exclusive
                actor.settled.set()

    async def _claim(self, actor: _Actor, chunk: _Chunk) -> bool:
        """Wait until ``chunk`` may go to ``actor`` (a careful chunk goes alone); False if it died."""
        while actor.alive and (actor.exclusive or (chunk.careful and actor.busy)):
            actor.settled.clear()
            await actor.settled.wait()
        if not actor.alive:
            return False
        actor.busy += 1
        actor.exclusive = chunk.careful
        return True

    async def _grade_on(self, actor: _Actor, batch: _Batch, program: PythonProgram, chunk: _Chunk) -> None:
        """Send one chunk to one actor and file what comes back."""
        ray_errors = (self._ray.exceptions.RayActorError, self._ray.exceptions.ObjectLostError)
        send = program if program.digest not in actor.programs else None
        if send is not None:
            actor.programs.add(program.digest)
            self.counters["sources_sent"] += 1
        size = chunk.stop - chunk.start
        # A backstop for an actor that stops answering without Ray noticing: the
        # local pool bounds each sample, so this only trips when the actor hangs.
        limit = LOAD_TIMEOUT + (batch.limit + GRACE) * 2 * math.ceil(size / max(1, actor.workers))
        try:
            async with asyncio.timeout(limit):
                outcomes = await actor.handle.grade.remote(
                    program.digest, send, batch.calls[chunk.start : chunk.stop], batch.limit
                )
        except (*ray_errors, TimeoutError) as exc:
            self._lose(actor, exc)
            self._requeue(batch, chunk, exc)
            return
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the actor raised: a bug, flagged for this chunk, not retried forever
            err = PythonOutcome(error="server", error_type="ray_actor_error", details=error_summary(exc))
            batch.fill(chunk, [err] * size)
            return
        finally:
            batch.in_flight -= 1
        if outcomes is None:  # the actor never got the source (it was replaced): send it again
            actor.programs.discard(program.digest)
            batch.queue.appendleft(chunk)
            batch.changed.set()
            return
        actor.graded += size
        actor.chunks += 1
        batch.fill(chunk, outcomes)

    def _requeue(self, batch: _Batch, chunk: _Chunk, exc: BaseException) -> None:
        """Give a lost actor's chunk to the survivors; cut it up once it has killed twice."""
        if batch.done():
            return
        chunk.kills += 1
        self.counters["requeued"] += 1
        if chunk.kills < KILLS_BEFORE_CAREFUL:
            batch.queue.appendleft(chunk)
        elif chunk.stop - chunk.start > 1:
            self.counters["careful_chunks"] += 1
            batch.queue.extendleft(
                _Chunk(i, i + 1, careful=True) for i in reversed(range(chunk.start, chunk.stop))
            )
        else:
            # One sample that took down two actors: it is the culprit, as a sample that
            # kills its worker is on one machine.
            batch.fill(
                chunk,
                [
                    PythonOutcome(
                        error="runtime",
                        error_type="WorkerDied",
                        details="grading this sample killed its Ray pool actor twice "
                        f"(last: {error_summary(exc)})",
                    )
                ],
            )
        batch.changed.set()

    async def wait_for_actors(self, count: int, timeout: float = 60.0) -> int:
        """Start actors and wait until ``count`` are ready (or ``timeout``); how many are.

        A batch starts on the actors ready when it comes; a server or benchmark that
        wants every node from the first batch on waits here first.
        """
        deadline = time.monotonic() + timeout
        while len(self._live()) < count and time.monotonic() < deadline:
            if time.monotonic() - self._last_refresh > self.refresh_interval or not self._pending:
                self._refresh()
            await asyncio.sleep(0.05)
        return len(self._live())

    # -- reporting -----------------------------------------------------------
    def stats(self) -> list[dict[str, Any]]:
        """Per live actor: node, workers, samples and chunks it answered (as the driver counted)."""
        return [
            {"node_id": a.node_id, "workers": a.workers, "graded": a.graded, "chunks": a.chunks}
            for a in self._live()
        ]

    async def actor_info(self) -> list[dict[str, Any]]:
        """What each live actor reports about itself (sources received, samples graded)."""
        return list(await asyncio.gather(*(a.handle.info.remote() for a in self._live())))

    async def aclose(self) -> None:
        for task in list(self._pending.values()):
            task.cancel()
        await asyncio.gather(*self._pending.values(), return_exceptions=True)
        for actor in list(self._live()):
            try:
                async with asyncio.timeout(10):
                    await actor.handle.close.remote()
            except Exception:  # a dead actor has nothing left to close
                pass
            self._ray.kill(actor.handle)
        self._actors.clear()
        if self._owns_ray:
            self._ray.shutdown()
            self._owns_ray = False
