"""A trainer's process opts in to rftgrade pausing its collector with RFTGRADE_GC_PAUSING.

Each case runs in a fresh interpreter: the switch is read when rftgrade is imported,
as it is in a trainer that loads rftgrade's reward function itself.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import string_check

ROOT = Path(__file__).resolve().parent.parent

# Counts the collections that run while one batch of an in-process grader is graded.
COUNT = """
import gc, json, sys
import rftgrade
grader = rftgrade.Grader(json.loads(sys.argv[1]))
rows = [{"sample": str(i), "item": {"answer": "1"}} for i in range(20_000)]
ran = []
gc.callbacks.append(lambda phase, info: ran.append(info["generation"]) if phase == "start" else None)
results = grader.run_batch(rows)
gc.callbacks.clear()
print(json.dumps({"collections": len(ran), "enabled_after": gc.isenabled(), "rows": len(results)}))
"""


def _run(env_value: str | None, code: str = COUNT) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "RFTGRADE_GC_PAUSING"}
    if env_value is not None:
        env["RFTGRADE_GC_PAUSING"] = env_value
    env["PYTHONPATH"] = str(ROOT)
    return subprocess.run(
        [sys.executable, "-c", code, json.dumps(string_check())],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(("value", "paused"), [(None, False), ("0", False), ("1", True), ("true", True)])
def test_the_environment_switch_decides_whether_a_batch_pauses_the_collector(
    value: str | None, paused: bool
) -> None:
    done = _run(value)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["rows"] == 20_000 and out["enabled_after"] is True
    if paused:
        # At most the one that waited for the batch to end (199 here when left alone).
        assert out["collections"] <= 1
    else:  # left alone, the batch's allocations set collections off as usual
        assert out["collections"] > 20


def test_a_value_that_is_not_a_switch_stops_the_import_and_says_what_to_set() -> None:
    done = _run("sometimes", "import rftgrade")
    assert done.returncode != 0
    assert "RFTGRADE_GC_PAUSING='sometimes' is not a switch" in done.stderr
    assert "set it to 1" in done.stderr
