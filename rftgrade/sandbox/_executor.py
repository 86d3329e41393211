"""``SandboxExecutor``: the :class:`~rftgrade.PythonExecutor` that runs python graders in pools."""

from __future__ import annotations

import asyncio
import os
from collections import OrderedDict
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from rftgrade._executors import PythonCall, PythonOutcome, PythonProgram
from rftgrade.sandbox._backend import SandboxBackend
from rftgrade.sandbox._limits import Limits
from rftgrade.sandbox._pool import WorkerPool
from rftgrade.sandbox._select import backend_class, make_backend

if TYPE_CHECKING:
    from rftgrade.sandbox.ray_pool import RayExecutor

__all__ = ["ISOLATION_LEVELS", "SandboxExecutor"]

ISOLATION_LEVELS = ("worker", "sample")


class SandboxExecutor:
    """Runs python graders in warm pools of sandboxed workers.

    Args:
        backend: ``"docker"``, ``"bwrap"``, ``"process"``, ``"auto"`` or a backend object.
        limits: resource limits (default: OpenAI's).
        workers: workers per grader (default: one per core).
        isolation: ``"worker"`` (samples share a worker process; fast), ``"sample"``
            (a fresh fork per sample) or ``None`` (each grader gets what its source
            needs: ``sample`` when it runs code it did not come with, see
            :mod:`rftgrade._isolation`). A grader may override it with an
            ``"isolation"`` key in its JSON.
        recycle_after: samples a worker serves before it is replaced.
        max_pools: graders kept warm at once (least recently used are closed).
        ray: ``auto`` or a Ray cluster's ``HOST:PORT``: grade on the cluster's nodes
            instead (a :class:`~rftgrade.sandbox.ray_pool.RayExecutor`; ``backend``
            is then chosen on each node, and ``workers`` is the CPUs per pool actor).
    """

    def __init__(
        self,
        backend: str | SandboxBackend = "auto",
        *,
        limits: Limits | None = None,
        workers: int | None = None,
        isolation: str | None = None,
        recycle_after: int = 100_000,
        max_pools: int = 16,
        ray: str | None = None,
    ) -> None:
        if isolation is not None and isolation not in ISOLATION_LEVELS:
            raise ValueError(f"isolation must be one of {ISOLATION_LEVELS}, got {isolation!r}")
        self._ray: RayExecutor | None = None
        if ray:
            self._ray = _ray_executor(ray, backend, limits, workers, isolation, recycle_after)
        if self._ray is not None:
            # The backend runs on the nodes; this process only needs the worker file's checks.
            self.backend = backend_class("process")()
            self.name, self.isolated = self._ray.name, self._ray.isolated
        else:
            self.backend = make_backend(backend) if isinstance(backend, str) else backend
            self.name = self.backend.name
            self.isolated = self.backend.isolated
        self.limits = limits or Limits.from_env()
        self.workers = workers or os.cpu_count() or 1
        self.isolation = isolation
        self.recycle_after = recycle_after
        self.max_pools = max_pools
        self._pools: OrderedDict[tuple[str, str], WorkerPool] = OrderedDict()
        self._lock = asyncio.Lock()

    def isolation_for(self, program: PythonProgram) -> tuple[str, str]:
        """The isolation ``program`` runs in, and why."""
        return isolation_choice(program, self.isolation)

    def _isolation_for(self, program: PythonProgram) -> str:
        return self.isolation_for(program)[0]

    async def pool(self, program: PythonProgram) -> WorkerPool:
        """The warm pool for ``program`` (started on first use)."""
        return await self._pool(program, use=False)

    async def _pool(self, program: PythonProgram, *, use: bool) -> WorkerPool:
        key = (program.digest, self._isolation_for(program))
        async with self._lock:
            pool = self._pools.get(key)
            if pool is None:
                pool = WorkerPool(
                    self.backend,
                    program,
                    isolation=key[1],
                    size=self.workers,
                    limits=self.limits,
                    recycle_after=self.recycle_after,
                )
                self._pools[key] = pool
                while len(self._pools) > self.max_pools:
                    _, old = self._pools.popitem(last=False)
                    # A batch still running on it closes it when it ends: closed
                    # now, its workers would be killed (or orphaned) under it.
                    old.evicted = True
                    if old.batches == 0:
                        await old.aclose()
            self._pools.move_to_end(key)
            if use:
                pool.batches += 1  # under the lock: it cannot be evicted and closed in between
            return pool

    async def warm(self, program: PythonProgram) -> None:
        """Start ``program``'s workers now, in the background (see :meth:`WorkerPool.start_all`)."""
        if self._ray is None:
            (await self._pool(program, use=False)).start_all()

    async def run(
        self,
        program: PythonProgram,
        calls: Sequence[PythonCall],
        *,
        timeout: float | None = None,
        batch_timeout: float | None = None,
    ) -> list[PythonOutcome]:
        if self._ray is not None:
            return await self._ray.run(program, calls, timeout=timeout, batch_timeout=batch_timeout)
        if len(program.source.encode("utf-8", "surrogatepass")) > self.limits.max_source_bytes:
            return [
                PythonOutcome(
                    error="runtime",
                    error_type="SourceTooLarge",
                    details=f"source exceeds {self.limits.max_source_bytes} bytes",
                )
                for _ in calls
            ]
        pool = await self._pool(program, use=True)
        try:
            return await pool.run(calls, timeout, batch_timeout)
        finally:
            pool.batches -= 1
            if pool.evicted and pool.batches == 0:
                await pool.aclose()

    def stats(self) -> list[dict[str, Any]]:
        if self._ray is not None:
            return self._ray.stats()
        return [pool.snapshot() for pool in self._pools.values()]

    async def aclose(self) -> None:
        if self._ray is not None:
            await self._ray.aclose()
        async with self._lock:
            for pool in self._pools.values():
                await pool.aclose()
            self._pools.clear()
        await self.backend.aclose()


def isolation_choice(program: PythonProgram, told: str | None) -> tuple[str, str]:
    """The isolation ``program`` runs in, and why: its JSON's, else the executor's, else its source's."""
    if program.isolation in ISOLATION_LEVELS:
        return program.isolation, "the grader's JSON says so"  # type: ignore[return-value]
    if told is not None:
        return told, "the sandbox executor was told so"
    return program.auto_isolation, program.isolation_reason or "chosen from the source"


def _ray_executor(
    address: str,
    backend: str | SandboxBackend,
    limits: Limits | None,
    workers: int | None,
    isolation: str | None,
    recycle_after: int,
) -> RayExecutor:
    from rftgrade.sandbox.ray_pool import RayExecutor

    if not isinstance(backend, str):
        raise ValueError(
            "ray= takes the backend by name (docker, bwrap, process or auto): each node builds its own"
        )
    cpus = workers or (int(os.environ["RFTGRADE_RAY_CPUS"]) if os.environ.get("RFTGRADE_RAY_CPUS") else None)
    return RayExecutor(
        address,
        backend=os.environ.get("RFTGRADE_SANDBOX", "auto") if backend == "auto" else backend,
        limits=limits,
        isolation=isolation,
        recycle_after=recycle_after,
        cpus_per_actor=cpus,
    )
