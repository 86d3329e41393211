"""Building the executors a grader needs: the one runtime builder every face uses.

A grader spec says what it needs (python parts need a sandbox executor, model
parts a judge). :func:`build_runtime` starts only those, from the caller's
choices (a sandbox backend, a Ray cluster, an executor to share), and records
which executors it started: those belong to the runtime and are closed with
it; executors the caller handed over as *providers* (a registry's shared pool)
stay the caller's. The CLI, the quality commands, the server's registry, the
pytest plugin and the trainer adapters all build their graders' runtimes here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from rftgrade._embeddings import Embedder
from rftgrade._executors import JudgeExecutor, PythonExecutor
from rftgrade._graders.base import Runtime
from rftgrade._specs import AnyGrader, LabelModelGrader, PythonGrader, ScoreModelGrader, grader_parts

__all__ = ["build_runtime", "needs_judge", "needs_python"]

E = TypeVar("E")


def needs_python(spec: AnyGrader) -> bool:
    """Whether any part of ``spec`` is a ``python`` grader."""
    return any(isinstance(g, PythonGrader) for g in grader_parts(spec))


def needs_judge(spec: AnyGrader) -> bool:
    """Whether any part of ``spec`` is a ``score_model`` or ``label_model`` grader."""
    return any(isinstance(g, (ScoreModelGrader, LabelModelGrader)) for g in grader_parts(spec))


def build_runtime(
    spec: AnyGrader,
    *,
    python: PythonExecutor | Callable[[], PythonExecutor] | None = None,
    judge: JudgeExecutor | Callable[[], JudgeExecutor] | None = None,
    embedder: Embedder | None = None,
    sandbox: str | None = "auto",
    ray: str | None = None,
    workers: int | None = None,
    judge_cache: bool = True,
    start: bool = True,
    own_given: bool = False,
    python_timeout: float | None = None,
    python_batch_timeout: float | None = None,
) -> Runtime:
    """The executors ``spec`` needs, started only if it needs them.

    Args:
        spec: the grader.
        python: the python executor to use, or a provider of a shared one.
        judge: the judge executor to use, or a provider of a shared one.
        sandbox: backend of a python executor built here (``docker``, ``bwrap``,
            ``process``, ``auto``).
        ray: build the python executor on this Ray cluster (``auto`` or ``HOST:PORT``).
        workers: workers per sandbox pool built here (default: one per core).
        judge_cache: whether a judge built here caches replies (``check`` and
            ``calibrate`` turn it off: their repeats must reach the model).
        start: build what is missing; ``False`` leaves a missing executor missing
            (its samples are then flagged, e.g. ``sandbox_unavailable``).
        own_given: the executors given as instances become the runtime's (closed
            with it), as :class:`~rftgrade.Grader` has always done with them.

    Raises:
        BackendUnavailableError: the sandbox asked for cannot run here.
    """
    owned: list[object] = []
    python_exec = _resolve(python, own_given, owned) if needs_python(spec) or _given(python) else None
    judge_exec = _resolve(judge, own_given, owned) if needs_judge(spec) or _given(judge) else None
    if python_exec is None and needs_python(spec) and (start or ray):
        from rftgrade.sandbox import SandboxExecutor

        python_exec = SandboxExecutor(sandbox or "auto", ray=ray, workers=workers)
        owned.append(python_exec)
    if judge_exec is None and needs_judge(spec) and start:
        from rftgrade.judge import BatchScorer

        judge_exec = BatchScorer(cache=judge_cache)
        owned.append(judge_exec)
    return Runtime(
        python=python_exec,
        judge=judge_exec,
        embedder=embedder,
        python_timeout=python_timeout,
        python_batch_timeout=python_batch_timeout,
        owned=tuple(owned),
    )


def _given(source: object) -> bool:
    """An executor instance (not a provider, not ``None``)."""
    return source is not None and not _is_provider(source)


def _is_provider(source: object) -> bool:
    return callable(source) and not hasattr(source, "aclose")


def _resolve(source: E | Callable[[], E] | None, own_given: bool, owned: list[object]) -> E | None:
    if source is None:
        return None
    if _is_provider(source):
        return source()  # type: ignore[operator,no-any-return]  # shared: stays the provider's
    if own_given:
        owned.append(source)
    return source  # type: ignore[return-value]
