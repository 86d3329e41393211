"""Grader.warm: a grader's sandbox workers start before its first batch, and a start
that fails is reported by the batch that needed it, as a start on demand is."""

from __future__ import annotations

import gc
import time
import warnings
from typing import Any

import pytest

from rftgrade import Grader, build_runtime
from rftgrade.sandbox import SandboxExecutor
from rftgrade.sandbox._select import backend_class

from .conftest import constant_python, require_or_skip, string_check

PY = constant_python(0.5)
FAILS = {
    "type": "python",
    "name": "import-fails",
    "source": "raise RuntimeError('boom at import')\ndef grade(sample, item):\n    return 1.0\n",
}


def _grader(spec: dict[str, Any], backend: str, workers: int = 2) -> Grader:
    return Grader(spec, runtime=build_runtime(Grader(spec).spec, sandbox=backend, workers=workers))


def _pool_stats(grader: Grader) -> dict[str, Any]:
    executor = grader.runtime.python
    assert isinstance(executor, SandboxExecutor)
    (stats,) = executor.stats()
    return stats


def _wait_for_live(grader: Grader, n: int) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        stats = _pool_stats(grader)
        if stats["live_workers"] == n:
            return stats
        time.sleep(0.02)
    raise AssertionError(f"workers never started: {_pool_stats(grader)}")


@pytest.mark.parametrize("backend", ["process", "bwrap"])
def test_warm_starts_every_worker_before_the_first_batch(backend: str) -> None:
    require_or_skip(backend_class(backend).unavailable_reason() is None, f"the {backend} sandbox")
    grader = _grader(PY, backend)
    try:
        grader.warm()  # returns; the workers start behind it
        stats = _wait_for_live(grader, 2)
        assert stats["spawned"] == 2 and stats["samples"] == 0
        results = grader.run_batch([("a", {}), ("b", {}), ("c", {}), ("d", {})])
        assert [r.reward for r in results] == [0.5] * 4
        assert _pool_stats(grader)["spawned"] == 2  # the batch used the warm workers
        grader.warm()  # nothing left to start: a second call starts nothing
        assert _pool_stats(grader)["spawned"] == 2
    finally:
        grader.close()
    assert grader.runtime.python.stats() == []  # type: ignore[union-attr]  # its pool closed


def test_a_failed_warm_start_fails_the_batch_as_a_start_on_demand_does() -> None:
    cold = _grader(FAILS, "process")
    warm = _grader(FAILS, "process")
    try:
        warm.warm()
        deadline = time.monotonic() + 30
        while _pool_stats(warm)["spawned"] < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.2)  # the failed starts have settled
        rows = [("a", {}), ("b", {})]
        expected = [r.to_answer()["metadata"]["errors"] for r in cold.run_batch(rows)]
        got = [r.to_answer()["metadata"]["errors"] for r in warm.run_batch(rows)]
        assert got == expected
        assert all(e["python_grader_runtime_error"] for e in got)
        assert "boom at import" in (warm.run("x").errors.python_grader_runtime_error_details or "")
    finally:
        cold.close()
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            warm.close()
            gc.collect()


def test_a_multi_grader_warms_its_python_sub_grader_and_others_are_a_no_op() -> None:
    multi = {
        "type": "multi",
        "name": "m",
        "graders": {"py": PY, "exact": string_check()},
        "calculate_output": "py + exact",
    }
    grader = _grader(multi, "process", workers=1)
    try:
        grader.warm()
        assert _wait_for_live(grader, 1)["spawned"] == 1
    finally:
        grader.close()
    plain = Grader(string_check())
    plain.warm()  # no executor: nothing to start, and no error
    assert plain.runtime.python is None
