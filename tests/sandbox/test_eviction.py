"""A pool evicted (least recently used, past ``max_pools``) while a batch runs on it is
closed only when that batch ends (issue 15, class 6)."""

from __future__ import annotations

import asyncio
import hashlib

import pytest

from rftgrade._executors import PythonCall, PythonProgram
from rftgrade.sandbox import Limits, SandboxExecutor
from rftgrade.sandbox._select import backend_class

from ..conftest import require_or_skip


def _program(name: str, source: str) -> PythonProgram:
    return PythonProgram(source=source, digest=hashlib.sha256(source.encode()).hexdigest(), name=name)


SLOW = _program("slow", "import time\ndef grade(sample, item):\n    time.sleep(0.5)\n    return 1.0\n")
QUICK = _program("quick", "def grade(sample, item):\n    return 0.5\n")


@pytest.mark.parametrize("engine", ["bwrap", "docker"])
def test_an_evicted_pool_finishes_its_batch(engine: str) -> None:
    require_or_skip(backend_class(engine).unavailable_reason() is None, f"the {engine} sandbox")

    async def main() -> None:
        executor = SandboxExecutor(
            engine, workers=1, max_pools=1, isolation="worker", limits=Limits(timeout=5.0)
        )
        try:
            await executor.run(SLOW, [PythonCall("a", {})])  # warm, so the batch below is mid-run
            slow = asyncio.ensure_future(executor.run(SLOW, [PythonCall(f"s{i}", {}) for i in range(4)]))
            await asyncio.sleep(0.3)
            quick = await executor.run(QUICK, [PythonCall("q", {})])  # evicts SLOW's pool
            assert [o.reward for o in quick] == [0.5]
            outcomes = await slow
            assert [o.reward for o in outcomes] == [1.0] * 4, outcomes
            # The evicted pool is closed once its batch is done; the live one serves on.
            assert [p["live_workers"] for p in executor.stats()] == [1]
        finally:
            await executor.aclose()

    asyncio.run(main())
