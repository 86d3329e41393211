"""The Ray executor on a real three-process cluster on this machine (head + worker nodes).

One cluster for the module (it takes seconds to start); the test that kills
every node runs last. Everything stays on loopback (``_cluster.LOOPBACK_ENV``).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import require_or_skip
from tests.ray._cluster import LoopbackCluster

try:
    import ray
except ImportError:  # the `ray` extra; setup.sh installs it, so CI fails instead of skipping
    if os.environ.get("RFTGRADE_REQUIRE_SANDBOXES") == "1":
        raise
    pytest.skip("ray is not installed (pip install 'rftgrade[ray]')", allow_module_level=True)

from rftgrade import Grader
from rftgrade._executors import PythonCalls, PythonProgram
from rftgrade._portal import get_portal
from rftgrade.sandbox import SandboxExecutor
from rftgrade.sandbox.ray_pool import RayExecutor

pytestmark = [pytest.mark.ray, pytest.mark.timeout(150)]

SCORE = "def grade(sample, item):\n    return int(sample['output_text']) / 1000\n"

# Sleeps so that a batch lasts long enough for a node to die or join under it.
SLOW = "import time\ndef grade(sample, item):\n    time.sleep(0.02)\n    return int(sample['output_text']) / 1000\n"

# Kills the actor that runs its worker (the `process` backend's worker is the actor's child).
KILLER = (
    "import os, signal\n"
    "def grade(sample, item):\n"
    "    if sample['output_text'] == '13':\n"
    "        os.kill(os.getppid(), signal.SIGKILL)\n"
    "    return int(sample['output_text']) / 1000\n"
)


def program(source: str) -> PythonProgram:
    import hashlib

    return PythonProgram(source, hashlib.sha256(source.encode()).hexdigest(), "t")


def calls(n: int) -> PythonCalls:
    return PythonCalls([str(i) for i in range(n)], [{"i": i} for i in range(n)])


@pytest.fixture(scope="module")
def cluster() -> Iterator[LoopbackCluster]:
    c = LoopbackCluster(workers=2)
    ray.init(address=c.address, log_to_driver=False)
    try:
        yield c
    finally:
        c.shutdown()


def python_grader(source: str) -> dict[str, Any]:
    return {"type": "python", "name": "p", "source": source}


def test_ray_installed_in_ci() -> None:
    assert ray.__version__ == "2.60.0"


async def test_batch_spreads_over_nodes_and_matches_local(cluster: LoopbackCluster) -> None:
    from rftgrade.sandbox.bwrap import BwrapBackend

    require_or_skip(BwrapBackend.unavailable_reason() is None, "bubblewrap")
    rows = [{"sample": str(i), "item": {"i": i}} for i in range(64)]
    rows[5] = {"sample": "not a number", "item": {}}  # a runtime error, flagged the same way
    executor = RayExecutor(cluster.address, backend="bwrap", refresh_interval=0.5)
    local = SandboxExecutor("bwrap", workers=2)
    ray_grader = Grader(python_grader(SCORE), python=executor)
    local_grader = Grader(python_grader(SCORE), python=local)
    try:
        on_ray = await ray_grader.arun_batch(rows)
        on_local = await local_grader.arun_batch(rows)
        stats = executor.stats()
        # The grader ran the executor on its portal's loop: ask the actors there too.
        info = await get_portal().acall(executor.actor_info())
    finally:
        await ray_grader.aclose()
        await local_grader.aclose()

    def strip(r: Any) -> Any:
        d = r.to_dict()
        d["metadata"].pop("execution_time", None)
        return d

    assert [strip(r) for r in on_ray] == [strip(r) for r in on_local]
    assert on_ray[7].reward == 0.007 and on_ray[5].errors.python_grader_runtime_error
    assert len({s["node_id"] for s in stats}) == 2, stats
    assert all(s["graded"] > 0 for s in stats), stats
    assert sum(s["graded"] for s in stats) == 64
    # The source went once to each actor, however many chunks it graded.
    assert sorted(i["sources_received"] for i in info) == [1, 1]
    assert sum(i["chunks"] for i in info) > 2


async def test_grader_that_kills_its_actor_is_the_only_one_flagged(cluster: LoopbackCluster) -> None:
    executor = RayExecutor(cluster.address, backend="process", refresh_interval=0.5, start_timeout=30)
    try:
        out = await executor.run(program(KILLER), calls(40), timeout=10)
        assert executor.counters["actors_lost"] >= 2
        assert executor.counters["careful_chunks"] >= 1
    finally:
        await executor.aclose()
    assert out[13].error == "runtime" and out[13].error_type == "WorkerDied", out[13]
    assert "killed its Ray pool actor twice" in (out[13].details or "")
    for i, o in enumerate(out):
        if i != 13:
            assert o.error is None and o.reward == i / 1000, (i, o)


async def test_node_removed_and_node_joined_mid_batch(cluster: LoopbackCluster) -> None:
    executor = RayExecutor(cluster.address, backend="process", refresh_interval=0.3, start_timeout=20)
    n = 300  # 0.02 s each over 2 one-CPU nodes: ~3 s of grading
    try:
        await executor.run(program(SLOW), calls(4), timeout=10)  # actors up on both nodes
        nodes_before = {s["node_id"] for s in executor.stats()}
        task = asyncio.ensure_future(executor.run(program(SLOW), calls(n), timeout=10))
        await asyncio.sleep(0.8)
        victim = cluster.workers[0]
        cluster.kill_node(victim)
        joined = cluster.add_node()
        cluster.workers.append(joined)
        out = await asyncio.wait_for(task, 120)
        stats = executor.stats()
    finally:
        await executor.aclose()
    assert [o.reward for o in out] == [i / 1000 for i in range(n)]
    assert all(o.error is None for o in out)
    assert executor.counters["actors_lost"] >= 1 and executor.counters["requeued"] >= 1
    new_nodes = {s["node_id"] for s in stats} - nodes_before
    assert any(s["graded"] > 0 for s in stats if s["node_id"] in new_nodes), stats


async def test_no_actor_left_flags_the_rest_without_hanging(cluster: LoopbackCluster) -> None:
    executor = RayExecutor(cluster.address, backend="process", refresh_interval=0.3, start_timeout=4)
    n = 400
    try:
        await executor.run(program(SLOW), calls(2), timeout=10)
        task = asyncio.ensure_future(executor.run(program(SLOW), calls(n), timeout=10))
        await asyncio.sleep(0.8)
        started = time.monotonic()
        for node in list(cluster.workers):
            cluster.kill_node(node)
        out = await asyncio.wait_for(task, 60)
        elapsed = time.monotonic() - started
    finally:
        await executor.aclose()
    graded = [o for o in out if o.error is None]
    flagged = [o for o in out if o.error is not None]
    assert graded and flagged, (len(graded), len(flagged))
    assert all(o.reward == int(i) / 1000 for i, o in enumerate(out) if o.error is None)
    assert {o.error_type for o in flagged} == {"no_ray_actor"}
    assert "no Ray pool actor is left" in (flagged[0].details or "")
    assert elapsed < 30
