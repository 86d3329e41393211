"""What runs on the Ray nodes: the pool actor (a local sandbox pool) and the doctor's probe.

Kept apart from the driver (:mod:`rftgrade.sandbox.ray_pool`) so that a node only
imports what it runs, and so that importing this module never needs Ray: the
actor class is plain Python and is made remote by the driver.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from rftgrade._exceptions import BackendUnavailableError
from rftgrade._executors import PythonCalls, PythonOutcome, PythonProgram
from rftgrade.sandbox._limits import Limits

__all__ = ["INSTALL_HINT", "PoolActor", "error_summary", "import_ray", "probe_node"]

RAY_VERSION = "2.60.0"
INSTALL_HINT = (
    f"grading on a Ray cluster needs Ray: pip install 'rftgrade[ray]' (ray=={RAY_VERSION}, the "
    "same version on every node), or drop --ray / ray= to grade on this machine"
)


def import_ray() -> Any:
    """``ray``, or a :class:`BackendUnavailableError` saying how to install it."""
    try:
        import ray
    except ImportError as exc:
        raise BackendUnavailableError(INSTALL_HINT) from exc
    return ray


class PoolActor:
    """One node's share of the cluster: a :class:`SandboxExecutor` sized to its CPUs.

    The backend is chosen here, on the node (``auto`` may mean docker on one node
    and bwrap on another); a node that has none fails the actor's creation, and
    the driver leaves that node out with the reason. Grader sources are kept by
    digest: the driver sends a source with the first chunk an actor gets, and
    only its digest after that.
    """

    SOURCE_WAIT = 10.0
    """Seconds a chunk that names an unknown digest waits for the chunk carrying its
    source: Ray starts an async actor's calls in no fixed order, so the first chunk
    (with the source) can start after the second (digest only)."""

    def __init__(
        self, backend: str, workers: int, limits: Limits, isolation: str | None, recycle_after: int
    ) -> None:
        from rftgrade.sandbox._executor import SandboxExecutor

        self.executor = SandboxExecutor(
            backend, limits=limits, workers=workers, isolation=isolation, recycle_after=recycle_after
        )
        self.programs: dict[str, PythonProgram] = {}
        self._arrived: dict[str, asyncio.Event] = {}
        self.sources_received = 0
        self.graded = 0
        self.chunks = 0

    def info(self) -> dict[str, Any]:
        """Where the actor runs and what it did (answered once it is ready)."""
        import ray

        return {
            "node_id": ray.get_runtime_context().get_node_id(),
            "pid": os.getpid(),
            "backend": self.executor.name,
            "workers": self.executor.workers,
            "sources_received": self.sources_received,
            "graded": self.graded,
            "chunks": self.chunks,
        }

    async def grade(
        self, digest: str, program: PythonProgram | None, calls: PythonCalls, timeout: float
    ) -> list[PythonOutcome] | None:
        """Grade one chunk; ``None`` when the source for ``digest`` was never sent here."""
        if program is not None:
            self.programs[digest] = program
            self.sources_received += 1
            self._arrived.setdefault(digest, asyncio.Event()).set()
        known = self.programs.get(digest)
        if known is None:
            try:
                async with asyncio.timeout(self.SOURCE_WAIT):
                    await self._arrived.setdefault(digest, asyncio.Event()).wait()
            except TimeoutError:
                return None  # never sent here (e.g. its chunk failed): the driver sends it again
            known = self.programs[digest]
        outcomes = await self.executor.run(known, calls, timeout=timeout)
        self.graded += len(outcomes)
        self.chunks += 1
        return outcomes

    async def close(self) -> None:
        await self.executor.aclose()


def probe_node() -> dict[str, Any]:
    """Which sandbox backends can run on the node this runs on (``None``: it can)."""
    import ray

    from rftgrade.sandbox._select import BACKENDS, backend_class

    reasons: dict[str, str | None] = {}
    for name in BACKENDS:
        try:
            reasons[name] = backend_class(name).unavailable_reason()
        except Exception as exc:  # a probe that fails says so instead of hiding the node
            reasons[name] = f"{type(exc).__name__}: {exc}"
    return {
        "node_id": ray.get_runtime_context().get_node_id(),
        "cpus": os.cpu_count() or 1,
        "backends": reasons,
    }


def error_summary(exc: BaseException) -> str:
    """``Type: first line`` of an error from Ray (its texts run to whole remote tracebacks)."""
    text = str(exc).strip().splitlines()
    first = next((line for line in text if line.strip()), "")
    return f"{type(exc).__name__}: {first[:300]}"
