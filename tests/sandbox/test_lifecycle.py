"""Pools across a worker's life: recycling, per-grader isolation, and a host process that dies."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from rftgrade import Grader
from rftgrade.sandbox import Limits, SandboxExecutor
from rftgrade.sandbox._select import backend_class

from ..conftest import require_or_skip

PID_SOURCE = "import os\ndef grade(sample, item):\n    return float(os.getpid() % 1000)\n"


def test_workers_are_recycled_after_n_samples() -> None:
    executor = SandboxExecutor("process", workers=1, recycle_after=3)
    grader = Grader({"type": "python", "name": "pid", "source": PID_SOURCE}, python=executor)
    try:
        pids = [grader.run("x", {}).reward for _ in range(7)]
    finally:
        stats = executor.stats()
        grader.close()
    assert len(set(pids)) == 3  # samples 1-3, 4-6, 7: three workers
    assert stats[0]["recycled"] == 2 and stats[0]["spawned"] == 3


@pytest.mark.parametrize("backend", ["docker", "bwrap"])
def test_per_grader_sample_isolation_keeps_the_worker(backend: str) -> None:
    require_or_skip(backend_class(backend).unavailable_reason() is None, f"the {backend} sandbox")
    source = (
        "import os\ndef grade(sample, item):\n    if item.get('die'):\n        os._exit(0)\n    return 1.0\n"
    )
    executor = SandboxExecutor(backend, workers=1, limits=Limits(timeout=5))
    grader = Grader(
        {"type": "python", "name": "iso", "source": source, "isolation": "sample"}, python=executor
    )
    try:
        results = grader.run_batch([("a", {}), ("b", {"die": True}), ("c", {})])
        stats = executor.stats()
    finally:
        grader.close()
    assert [r.reward for r in results] == [1.0, 0.0, 1.0]
    assert results[1].errors.python_grader_runtime_error
    assert stats[0]["isolation"] == "sample" and stats[0]["spawned"] == 1 and stats[0]["crashed"] == 0


HOST = textwrap.dedent("""
    import sys, time
    from rftgrade import Grader
    from rftgrade.sandbox import SandboxExecutor
    grader = Grader({"type": "python", "name": "h", "source": "def grade(s, i):\\n    return 1.0\\n"},
                    python=SandboxExecutor(sys.argv[1], workers=2))
    assert grader.run_batch([("a", {}), ("b", {}), ("c", {})])[0].reward == 1.0
    print("ready", flush=True)
    time.sleep(600)
""")


@pytest.mark.parametrize("backend", ["docker", "bwrap"])
def test_nothing_outlives_a_killed_host_process(backend: str) -> None:
    require_or_skip(backend_class(backend).unavailable_reason() is None, f"the {backend} sandbox")
    proc = subprocess.Popen([sys.executable, "-c", HOST, backend], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    owner_pid = proc.pid
    os.kill(owner_pid, signal.SIGKILL)
    proc.wait(30)
    if backend == "docker":
        from rftgrade.sandbox.docker import LABEL, DockerBackend, _client

        def theirs() -> list[str]:
            return [
                c.name
                for c in _client().containers.list(all=True, filters={"label": LABEL})
                if c.labels.get(f"{LABEL}.owner", "").endswith(f":{owner_pid}")
            ]

        assert theirs(), "the dead host's containers should still be there before the reaper runs"
        DockerBackend()  # a new backend reaps stale containers at start
        assert theirs() == []
    else:
        deadline = time.time() + 10  # --die-with-parent: the namespaces die with their bwrap parent
        while time.time() < deadline:
            left = subprocess.run(
                ["ps", "-o", "pid=", "-u", "65534"], capture_output=True, text=True
            ).stdout.split()
            if not left:
                break
            time.sleep(0.2)
        assert not left, f"sandbox processes outlived their host: {left}"
