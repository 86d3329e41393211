"""build_runtime: only what a spec needs is started, and a grader closes only what it owns."""

from __future__ import annotations

from typing import Any

import pytest

from rftgrade import Grader, build_runtime
from rftgrade._registry import GraderRegistry
from rftgrade.sandbox import SandboxExecutor

from .conftest import constant_python, score_model, string_check

PY = constant_python(0.5)
JUDGE = score_model("gpt-4o-mini", "j")


def _live_workers(executor: SandboxExecutor) -> int:
    return sum(pool["live_workers"] for pool in executor.stats())


def test_only_what_the_spec_needs_is_started() -> None:
    deterministic = build_runtime(Grader(string_check()).spec, sandbox="process")
    assert deterministic.python is None and deterministic.judge is None and deterministic.owned == ()
    python = build_runtime(Grader(PY).spec, sandbox="process")
    assert python.python is not None and python.judge is None and python.owned == (python.python,)
    judged = build_runtime(Grader(JUDGE).spec, sandbox="process")
    assert judged.python is None and judged.judge is not None and judged.owned == (judged.judge,)


def test_a_provider_is_called_only_when_needed_and_stays_the_callers() -> None:
    calls: list[int] = []
    shared = SandboxExecutor("process", workers=1)

    def provide() -> SandboxExecutor:
        calls.append(1)
        return shared

    build_runtime(Grader(string_check()).spec, python=provide)
    assert calls == []
    try:
        first = Grader(PY, runtime=build_runtime(Grader(PY).spec, python=provide))
        second = Grader(PY, runtime=build_runtime(Grader(PY).spec, python=provide))
        assert first.run("x").reward == 0.5
        first.close()  # must not close the pool the second grader uses
        assert second.run("x").reward == 0.5 and second.run("x").ok
        assert _live_workers(shared) == 1
        second.close()
        assert _live_workers(shared) == 1
    finally:
        Grader(PY, python=shared).close()  # handed over: this grader closes it
    assert _live_workers(shared) == 0


def test_a_grader_closes_the_sandbox_it_built() -> None:
    grader = Grader(PY, sandbox="process")
    assert grader.run("x").reward == 0.5
    executor: Any = grader.runtime.python
    assert _live_workers(executor) >= 1
    grader.close()
    assert _live_workers(executor) == 0


def test_registry_graders_share_executors_and_never_close_them() -> None:
    registry = GraderRegistry(sandbox="process")
    try:
        a = registry.add(PY)
        b = registry.add({**PY, "name": "other"})
        assert a.runtime.python is b.runtime.python and a.runtime.owned == ()
        a.run("x")
        a.close()
        assert b.run("x").reward == 0.5
    finally:
        registry.close()


def test_a_sandbox_that_cannot_run_is_an_error_not_a_flag_per_sample() -> None:
    from rftgrade import BackendUnavailableError

    with pytest.raises((BackendUnavailableError, ValueError)):
        Grader(PY, sandbox="no-such-backend")
