"""Graders compiled once and kept warm, shared by the server and the trainer adapters.

A :class:`GraderRegistry` owns one python executor (sandbox pools) and one judge
executor for all its graders, compiles each grader once, and finds it again by
id (a hash of its canonical JSON) or by the name it was registered under.
"""

from __future__ import annotations

import threading
from typing import Any

from rftgrade._exceptions import GraderValidationError, Problem
from rftgrade._executors import JudgeExecutor, PythonExecutor
from rftgrade._grader import Grader, grader_id
from rftgrade._load import GraderLike, load_spec
from rftgrade._runtime import build_runtime

__all__ = ["GraderRegistry", "UnknownGraderError"]


class UnknownGraderError(KeyError):
    """No grader is registered under that id or name."""


class GraderRegistry:
    """Compiled graders by id and name, with shared executors created on first need.

    Args:
        sandbox: backend for python graders (``docker``, ``bwrap``, ``process``, ``auto``).
        python: an executor to use instead of building one from ``sandbox``.
        judge: a judge executor to use instead of the default :class:`~rftgrade.judge.BatchScorer`.
        python_timeout: seconds per python sample (default: the sandbox's limit).
        python_batch_timeout: seconds for all python samples of one grading call
            together (a server request, or one chunk of a streamed one); samples
            still unanswered then fail with ``unresponsive_reward_error``.
        ray: run python graders on this Ray cluster (``auto`` or ``HOST:PORT``).
    """

    def __init__(
        self,
        *,
        sandbox: str = "auto",
        python: PythonExecutor | None = None,
        judge: JudgeExecutor | None = None,
        python_timeout: float | None = None,
        python_batch_timeout: float | None = None,
        max_graders: int = 256,
        ray: str | None = None,
    ) -> None:
        self.sandbox = sandbox
        self.ray = ray
        self._python = python
        self._judge = judge
        self.python_timeout = python_timeout
        self.python_batch_timeout = python_batch_timeout
        self.max_graders = max_graders
        self._by_id: dict[str, Grader] = {}
        self._names: dict[str, str] = {}
        self._lock = threading.Lock()

    # -- executors -----------------------------------------------------------
    def python_executor(self) -> PythonExecutor:
        with self._lock:
            if self._python is None:
                from rftgrade.sandbox import SandboxExecutor

                self._python = SandboxExecutor(self.sandbox, ray=self.ray)
            return self._python

    def judge_executor(self) -> JudgeExecutor:
        with self._lock:
            if self._judge is None:
                from rftgrade.judge import BatchScorer

                self._judge = BatchScorer()
            return self._judge

    # -- graders -------------------------------------------------------------
    def add(self, source: GraderLike, name: str | None = None) -> Grader:
        """Compile (once) and register a grader; returns the shared :class:`Grader`.

        Raises:
            GraderValidationError: the grader is invalid, or names a model no backend serves.
            BackendUnavailableError: it needs a sandbox that cannot run here.
        """
        spec = load_spec(source)
        gid = grader_id(spec)
        with self._lock:
            existing = self._by_id.get(gid)
            if existing is not None:
                self._touch(gid)
        if existing is None:
            # The registry's executors are shared: providers, started on first need,
            # never closed by one of its graders.
            runtime = build_runtime(
                spec,
                python=self.python_executor,
                judge=self.judge_executor,
                python_timeout=self.python_timeout,
                python_batch_timeout=self.python_batch_timeout,
            )
            existing = Grader(spec, runtime=runtime)
            with self._lock:
                if len(self._by_id) >= self.max_graders and gid not in self._by_id and not self._evict_one():
                    raise GraderValidationError(
                        [
                            Problem(
                                "",
                                f"the registry holds {self.max_graders} named graders; restart or raise the limit",
                            )
                        ]
                    )
                existing = self._by_id.setdefault(gid, existing)
        if name:
            with self._lock:
                self._names[name] = gid
        return existing

    def get(self, ref: str) -> Grader:
        """A registered grader by id or name.

        Raises:
            UnknownGraderError: nothing is registered under ``ref``.
        """
        with self._lock:
            gid = self._names.get(ref, ref)
            grader = self._by_id.get(gid)
            if grader is not None:
                self._touch(gid)
        if grader is None:
            raise UnknownGraderError(ref)
        return grader

    def _touch(self, gid: str) -> None:
        """Mark ``gid`` used (dicts keep insertion order: the first is the least recent)."""
        self._by_id[gid] = self._by_id.pop(gid)

    def _evict_one(self) -> bool:
        """Drop the least recently used grader that no name refers to (an inline
        grader of some request): its sandbox pool stays with the executor, which
        closes idle pools by its own LRU. False when every grader is named."""
        named = set(self._names.values())
        for gid in self._by_id:
            if gid not in named:
                del self._by_id[gid]
                return True
        return False

    def names(self) -> dict[str, str]:
        with self._lock:
            return dict(self._names)

    def graders(self) -> list[Grader]:
        with self._lock:
            return list(self._by_id.values())

    def stats(self) -> dict[str, Any]:
        out: dict[str, Any] = {"graders": len(self._by_id)}
        python = self._python
        if python is not None and hasattr(python, "stats"):
            out["pools"] = python.stats()
        judge = self._judge
        if judge is not None and hasattr(judge, "snapshot"):
            out["judge"] = judge.snapshot()
        return out

    async def aclose(self) -> None:
        from rftgrade._portal import get_portal

        for executor in (self._python, self._judge):
            if executor is not None:
                await get_portal().acall(executor.aclose())

    def close(self) -> None:
        from rftgrade._portal import get_portal

        for executor in (self._python, self._judge):
            if executor is not None:
                get_portal().call(executor.aclose())
        self._python = self._judge = None
