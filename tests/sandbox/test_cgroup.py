"""bwrap workers in a cgroup of their own, where the host lets rftgrade make one:
memory is bounded for the worker and its processes together, not only per process."""

from __future__ import annotations

import glob
import os

import pytest

from rftgrade import Grader
from rftgrade.sandbox import Limits, SandboxExecutor, _cgroup
from rftgrade.sandbox._select import backend_class

from ..conftest import require_or_skip

# Six processes of 150 MB each: every one under its own 256 MB RLIMIT_AS, together
# far over the worker's 256 MB.
SPREAD = r"""
import os, time

def grade(sample, item):
    pids = []
    for _ in range(6):
        pid = os.fork()
        if pid == 0:
            try:
                data = b"x" * (150 * 1024 * 1024)
                time.sleep(1.0)
                os._exit(0 if data else 1)
            except BaseException:
                os._exit(3)
        pids.append(pid)
    codes = [os.waitpid(p, 0)[1] for p in pids]
    return 1.0 if all(c == 0 for c in codes) else 0.0
"""

WHERE = "def grade(sample, item):\n    return 1.0\n"


def _mine() -> list[str]:
    return glob.glob(f"/sys/fs/cgroup/*/**/rftgrade-{os.getpid()}-*", recursive=True)


def test_bwrap_worker_memory_is_bounded_as_a_whole() -> None:
    require_or_skip(backend_class("bwrap").unavailable_reason() is None, "the bwrap sandbox")
    if not _cgroup.available():
        pytest.skip("no writable cgroup v1 memory and pids hierarchies here (docs/sandbox.md)")
    limits = Limits(timeout=20.0, memory_bytes=256 * 1024**2, pids=32)
    executor = SandboxExecutor("bwrap", isolation="worker", workers=1, limits=limits)
    where = Grader({"type": "python", "name": "where", "source": WHERE}, python=executor)
    try:
        assert [r.reward for r in where.run_batch([("a", {})])] == [1.0]
        # The live worker's processes are in its own memory and pids cgroups.
        groups = _mine()
        assert {g.split("/")[4] for g in groups} == {"memory", "pids"}, groups
        assert all(open(f"{g}/cgroup.procs").read().split() for g in groups)
        spread = Grader({"type": "python", "name": "spread", "source": SPREAD}, python=executor)
        (result,) = spread.run_batch([("a", {})])
        # The kernel's OOM killer took one of its processes (or the worker itself).
        assert result.reward == 0.0, result.to_dict()
        assert [r.reward for r in where.run_batch([("a", {})])] == [1.0]
    finally:
        where.close()
    assert not _mine(), "cgroups left behind"
