"""Graders compiled once and kept warm, shared by the server and the trainer adapters.

A :class:`GraderRegistry` owns one python executor (sandbox pools) and one judge
executor for all its graders, compiles each grader once, and finds it again by
id (a hash of its canonical JSON) or by the name it was registered under.

Named graders stay until the process ends (up to ``max_named_graders``). Inline
ones (a grader's JSON in a request, as OpenAI's ``graders/run`` sends it) are a
cache: least recently used first out once there are more than ``max_graders`` of
them or their JSON passes ``max_inline_bytes``, so a client may send a new grader
with every request and is never refused for it.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from typing import Any

from rftgrade._executors import JudgeExecutor, PythonExecutor
from rftgrade._grader import Grader, grader_id
from rftgrade._load import GraderLike, grader_to_dict, load_spec
from rftgrade._runtime import build_runtime

__all__ = ["GraderRegistry", "RegistryFullError", "UnknownGraderError"]


class UnknownGraderError(KeyError):
    """No grader is registered under that id or name."""


class RegistryFullError(ValueError):
    """A new name past ``max_named_graders`` (inline graders are never refused)."""


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
        max_graders: inline graders (registered under no name) kept compiled; past it
            the least recently used one is dropped (and compiled again if it comes back).
        max_inline_bytes: the same bound on the inline graders' canonical JSON, in bytes
            (one bigger than this is still kept while it is the most recent).
        max_named_graders: names registered at most; one more raises :class:`RegistryFullError`.
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
        max_inline_bytes: int = 64 * 1024 * 1024,
        max_named_graders: int = 4096,
    ) -> None:
        self.sandbox = sandbox
        self.ray = ray
        self._python = python
        self._judge = judge
        self.python_timeout = python_timeout
        self.python_batch_timeout = python_batch_timeout
        self.max_graders = max_graders
        self.max_inline_bytes = max_inline_bytes
        self.max_named_graders = max_named_graders
        self._by_id: dict[str, Grader] = {}
        self._names: dict[str, str] = {}
        self._sizes: dict[str, int] = {}
        """Each grader's canonical JSON size: what it weighs in the inline cache."""
        self._inline: OrderedDict[str, None] = OrderedDict()
        """Graders no name refers to, least recently used first."""
        self._inline_bytes = 0
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
            RegistryFullError: ``name`` is new and ``max_named_graders`` names are taken.
        """
        spec = load_spec(source)
        gid = grader_id(spec)
        with self._lock:
            if name:
                self._check_name(name)
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
                existing = self._keep(gid, existing, inline=not name)
        if name:
            with self._lock:
                self._check_name(name)  # again: other names may have come meanwhile
                self._name(name, gid, existing)
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
        """Mark ``gid`` used (the inline cache drops the least recent first). Under the lock."""
        if gid in self._inline:
            self._inline.move_to_end(gid)

    def _cache_inline(self, gid: str) -> None:
        """Put ``gid`` (no name refers to it) in the inline cache as its most recent
        entry, then drop the least recent ones past the bounds. Under the lock.

        A dropped grader's sandbox pool stays with the executor, which closes idle
        pools by its own LRU; a request still grading with it keeps its object."""
        if gid in self._inline:
            self._inline.move_to_end(gid)
            return
        self._inline[gid] = None
        self._inline_bytes += self._sizes[gid]
        while len(self._inline) > 1 and (
            len(self._inline) > self.max_graders or self._inline_bytes > self.max_inline_bytes
        ):
            old, _ = self._inline.popitem(last=False)
            self._inline_bytes -= self._sizes.pop(old)
            del self._by_id[old]

    def _check_name(self, name: str) -> None:
        """Raise :class:`RegistryFullError` for a new name past the limit. Under the lock."""
        if name not in self._names and len(self._names) >= self.max_named_graders:
            raise RegistryFullError(
                f"the registry holds {self.max_named_graders:,} named graders; reuse a name, "
                "send the grader inline instead (inline graders are cached, never refused), "
                "or start the server with a higher limit"
            )

    def _keep(self, gid: str, grader: Grader, *, inline: bool) -> Grader:
        """Hold ``grader`` under ``gid`` (the one held already, if another thread was
        first), in the inline cache when ``inline``. Under the lock."""
        current = self._by_id.get(gid)
        if current is not None:
            self._touch(gid)
            return current
        self._by_id[gid] = grader
        self._sizes[gid] = len(_canonical(grader.spec))
        if inline:
            self._cache_inline(gid)
        return grader

    def _name(self, name: str, gid: str, grader: Grader) -> None:
        """Point ``name`` at ``gid``: a named grader leaves the inline cache, and the one
        the name pointed at before joins it when no other name refers to it. Under the lock."""
        self._keep(gid, grader, inline=False)  # back, if the cache dropped it meanwhile
        before = self._names.get(name)
        self._names[name] = gid
        if gid in self._inline:
            del self._inline[gid]
            self._inline_bytes -= self._sizes[gid]
        if before not in (None, gid) and before in self._by_id and before not in self._names.values():
            self._cache_inline(before)

    def inline_usage(self) -> dict[str, int]:
        """The inline cache's size: ``{"graders", "bytes"}``."""
        with self._lock:
            return {"graders": len(self._inline), "bytes": self._inline_bytes}

    def names(self) -> dict[str, str]:
        with self._lock:
            return dict(self._names)

    def graders(self) -> list[Grader]:
        with self._lock:
            return list(self._by_id.values())

    def stats(self) -> dict[str, Any]:
        out: dict[str, Any] = {"graders": len(self._by_id), "inline": self.inline_usage()}
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


def _canonical(spec: Any) -> bytes:
    """A grader's canonical JSON, as :func:`rftgrade._grader.grader_id` hashes it."""
    text = json.dumps(grader_to_dict(spec), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return text.encode()
