"""A request's python samples share one deadline (issue 15, class 7): samples that each
take just under the per-sample limit do not add up past it."""

from __future__ import annotations

import os
import time

import httpx
import pytest

from rftgrade._registry import GraderRegistry
from rftgrade.sandbox import Limits, SandboxExecutor
from rftgrade.sandbox._select import backend_class
from rftgrade.server import ServerConfig

from ..conftest import require_or_skip
from .conftest import running_server

SLOW = {
    "type": "python",
    "name": "slow",
    "source": "import time\ndef grade(sample, item):\n    time.sleep(1.5)\n    return 1.0\n",
}


@pytest.mark.parametrize("engine", ["bwrap", "docker"])
def test_a_request_past_its_deadline_flags_the_rest(engine: str) -> None:
    chosen = os.environ.get("RFTGRADE_SANDBOX")
    if chosen and chosen != engine:
        pytest.skip(f"RFTGRADE_SANDBOX={chosen}")
    require_or_skip(backend_class(engine).unavailable_reason() is None, f"the {engine} sandbox")
    registry = GraderRegistry(python=SandboxExecutor(engine, workers=2, limits=Limits(timeout=2.0)))
    with running_server(ServerConfig(request_timeout=3.0), registry) as base:
        rows = [{"sample": f"s{i}", "item": {}} for i in range(10)]  # 7.5 s of sleeping on two workers
        start = time.monotonic()
        response = httpx.post(base + "/v1/grade", json={"grader": SLOW, "rows": rows}, timeout=60)
        elapsed = time.monotonic() - start
        assert response.status_code == 200, response.text
        results = response.json()["results"]
        late = [r for r in results if r["metadata"]["errors"]["unresponsive_reward_error"]]
        done = [r for r in results if r["reward"] == 1.0]
        assert late and done and len(late) + len(done) == 10, results
        assert elapsed < 3.0 + 3.0, elapsed
        # The server stays up and the next request is graded in full.
        again = httpx.post(base + "/v1/grade", json={"grader": SLOW, "rows": rows[:2]}, timeout=60)
        assert [r["reward"] for r in again.json()["results"]] == [1.0, 1.0]
