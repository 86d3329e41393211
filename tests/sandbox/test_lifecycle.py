"""Pools across a worker's life: recycling, per-grader isolation, and a host process that dies."""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pytest

from rftgrade import Grader
from rftgrade.sandbox import Limits, SandboxExecutor
from rftgrade.sandbox._channel import Channel, PipeChannel
from rftgrade.sandbox._select import backend_class
from rftgrade.sandbox.process import ProcessBackend

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


def test_recycling_mid_batch_loses_no_sample() -> None:
    # Recycles land inside one batch: the replacement starts in the background
    # and every sample still gets its own score, in order.
    executor = SandboxExecutor("process", workers=2, recycle_after=5)
    source = "def grade(sample, item):\n    return float(item['n'])\n"
    grader = Grader({"type": "python", "name": "n", "source": source}, python=executor)
    try:
        for _ in range(2):
            results = grader.run_batch([{"sample": "x", "item": {"n": n}} for n in range(40)])
            assert [r.reward for r in results] == [float(n) for n in range(40)]
            assert all(r.ok for r in results)
    finally:
        stats = executor.stats()
        grader.close()
    assert stats[0]["recycled"] >= 4


class _SlowStart(ProcessBackend):
    async def spawn(self, limits: Limits) -> Channel:
        await asyncio.sleep(0.5)
        return await super().spawn(limits)


def test_a_call_cancelled_while_a_replacement_starts_leaks_no_worker() -> None:
    from rftgrade._executors import PythonCall, PythonProgram

    program = PythonProgram(source="def grade(sample, item):\n    return 1.0\n", digest="slow-start")

    async def scenario() -> dict[str, object]:
        executor = SandboxExecutor(_SlowStart(), workers=1, recycle_after=1)
        try:
            assert (await executor.run(program, [PythonCall("x", {})]))[0].reward == 1.0
            # The worker was recycled; its replacement is starting. Give up waiting for it.
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(executor.run(program, [PythonCall("x", {})]), 0.1)
            await asyncio.sleep(1.0)  # the replacement finishes starting
            assert (await executor.run(program, [PythonCall("x", {})]))[0].reward == 1.0
            return executor.stats()[0]
        finally:
            await executor.aclose()

    stats = asyncio.run(scenario())
    assert stats["live_workers"] == 0 and stats["spawned"] == 2  # recycled again after the last call


def test_a_worker_due_for_recycling_has_its_replacement_started_ahead() -> None:
    # A Docker worker takes ~0.4 s to start: the replacement is started while the old
    # worker grades its last fifth of `recycle_after`, not when a batch needs it.
    executor = SandboxExecutor(_SlowStart(), workers=1, recycle_after=100)
    source = "def grade(sample, item):\n    return float(item['n'])\n"
    grader = Grader({"type": "python", "name": "n", "source": source}, python=executor)
    rows = [{"sample": "x", "item": {"n": n}} for n in range(30)]
    try:
        for _ in range(3):  # 90 samples: within the last fifth
            assert [r.reward for r in grader.run_batch(rows)] == [float(n) for n in range(30)]
        time.sleep(1.5)  # no batch running: the replacement starts on its own
        ahead = executor.stats()[0]
        assert [r.reward for r in grader.run_batch(rows)] == [float(n) for n in range(30)]
        after = executor.stats()[0]
    finally:
        grader.close()
    assert ahead["started_ahead"] == 1 and ahead["recycled"] == 0
    assert ahead["spawned"] == 2 and ahead["live_workers"] == 2
    # The batch that crossed 100 samples handed over to it: nothing else was started.
    assert after["recycled"] == 1 and after["spawned"] == 2 and after["live_workers"] == 1


class _SecondSpawnFails(ProcessBackend):
    spawns = 0

    async def spawn(self, limits: Limits) -> Channel:
        self.spawns += 1
        if self.spawns == 2:
            raise OSError("the engine hiccuped")
        return await super().spawn(limits)


def test_a_replacement_that_failed_to_start_ahead_is_started_again_when_needed() -> None:
    backend = _SecondSpawnFails()
    executor = SandboxExecutor(backend, workers=1, recycle_after=100)
    source = "def grade(sample, item):\n    return float(item['n'])\n"
    grader = Grader({"type": "python", "name": "n", "source": source}, python=executor)
    rows = [{"sample": "x", "item": {"n": n}} for n in range(30)]
    try:
        for _ in range(5):  # the replacement started ahead fails; the recycle starts another
            results = grader.run_batch(rows)
            assert [r.reward for r in results] == [float(n) for n in range(30)]
            assert all(r.ok for r in results), [r.error_messages for r in results if not r.ok][:1]
        stats = executor.stats()[0]
    finally:
        grader.close()
    assert backend.spawns == 3 and stats["started_ahead"] == 1 and stats["recycled"] == 1


class _StaleWorker(ProcessBackend):
    """A worker built from an older rftgrade: it answers the load with protocol v1."""

    async def spawn(self, limits: Limits) -> Channel:
        script = (
            "import os, struct, json\n"
            "os.read(0, 1 << 20)\n"
            "data = json.dumps({'op': 'loaded', 'v': 1, 'ok': True}).encode()\n"
            "os.write(1, struct.pack('>I', len(data)) + data)\n"
            "os.read(0, 1 << 20)\n"
        )
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-c", script, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE
        )
        return PipeChannel(proc)


def test_a_stale_worker_is_refused_with_the_command_that_rebuilds_it() -> None:
    grader = Grader(
        {"type": "python", "name": "ok", "source": "def grade(sample, item):\n    return 1.0\n"},
        python=SandboxExecutor(_StaleWorker(), workers=1),
    )
    try:
        (result,) = grader.run_batch([("x", {})])
    finally:
        grader.close()
    assert result.errors.python_grader_server_error and result.reward == 0.0
    assert result.errors.python_grader_server_error_type == "spawn_failed"
    assert "protocol v1" in result.error_messages[0] and "rftgrade sandbox build" in result.error_messages[0]


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
        from rftgrade.sandbox.bwrap import BwrapBackend

        def dirs() -> list[Path]:
            return list(Path(tempfile.gettempdir()).glob(f"rftgrade-worker-{owner_pid}-*"))

        assert dirs(), "the dead host's worker directory should still be there before the reaper runs"
        fresh = BwrapBackend()  # a new backend removes the directories of dead owners
        asyncio.run(fresh.aclose())
        assert dirs() == []


def test_chunks_cover_the_batch_and_shrink_towards_its_end() -> None:
    from rftgrade.sandbox._chunks import chunk_bounds

    for n in (1, 2, 3, 10, 100, 1000, 8192, 25_001):
        for workers in (1, 2, 8):
            bounds = chunk_bounds(n, workers, 1024)
            assert bounds[0][0] == 0 and bounds[-1][1] == n
            assert all(a[1] == b[0] for a, b in itertools.pairwise(bounds))
            sizes = [stop - start for start, stop in bounds]
            assert all(0 < s <= 1024 for s in sizes)
            assert sizes[:-1] == sorted(sizes[:-1], reverse=True)  # the last may be a remainder
            if n >= 2 * workers:
                assert len(bounds) >= workers  # every worker gets a share


def test_a_batch_sharing_its_pool_is_cut_in_equal_chunks_one_per_worker() -> None:
    from rftgrade.sandbox._chunks import chunk_bounds

    for n in (1, 2, 3, 10, 1000, 1300, 8192, 25_001):
        for workers in (1, 2, 8):
            bounds = chunk_bounds(n, workers, 1024, alone=False)
            assert bounds[0][0] == 0 and bounds[-1][1] == n
            assert all(a[1] == b[0] for a, b in itertools.pairwise(bounds))
            sizes = [stop - start for start, stop in bounds]
            assert max(sizes) - min(sizes) <= 1 and min(sizes) > 0 and max(sizes) <= 1024
            # No tail of small chunks: as few as every worker getting one allows.
            assert len(bounds) == max(min(workers, n), -(-n // 1024))


def test_batches_sharing_a_pool_skip_the_small_tail_chunks() -> None:
    # A batch alone shrinks its chunks towards its end (its workers finish
    # together); batches in flight together keep the workers busy anyway, so each
    # is cut in one chunk per worker: fewer frames for the same samples.
    from rftgrade.sandbox._chunks import chunk_bounds

    executor = SandboxExecutor("process", workers=2)
    source = "def grade(sample, item):\n    return float(item['n'])\n"
    grader = Grader({"type": "python", "name": "n", "source": source}, python=executor)
    rows = [{"sample": "x", "item": {"n": n}} for n in range(1000)]

    async def three() -> list[list[float]]:
        batches = await asyncio.gather(*(grader.arun_batch(rows) for _ in range(3)))
        return [[r.reward for r in results] for results in batches]

    try:
        assert [r.reward for r in grader.run_batch(rows)] == [float(n) for n in range(1000)]
        alone = executor.stats()[0]["chunks"]
        assert alone == len(chunk_bounds(1000, 2, 1024)) > 2
        assert asyncio.run(three()) == [[float(n) for n in range(1000)]] * 3
        # The first starts alone; the two that join it find it running.
        assert executor.stats()[0]["chunks"] - alone == alone + 2 + 2
    finally:
        grader.close()


@pytest.mark.parametrize("culprit", [0, 57, 299])
@pytest.mark.parametrize("backend", ["process", "docker"])
def test_a_worker_dying_with_a_chunk_sent_ahead_loses_no_other_sample(backend: str, culprit: int) -> None:
    # Workers get their next chunk while they grade the current one. When one dies,
    # the chunk sent ahead (never answered) is graded again elsewhere; only the
    # sample that killed it is flagged. The padding makes the chunk sent ahead
    # bigger than a pipe or socket buffer, so it is still being written when the
    # worker dies: the replies the worker sent before that must still be read.
    require_or_skip(backend_class(backend).unavailable_reason() is None, f"the {backend} sandbox")
    executor = SandboxExecutor(backend, workers=2)
    source = textwrap.dedent(
        """
        import os
        def grade(sample, item):
            if item["die"]:
                os._exit(3)
            return float(item["n"])
        """
    )
    grader = Grader({"type": "python", "name": "n", "source": source}, python=executor)
    pad = "p" * 4000
    rows = [{"sample": "x", "item": {"n": n, "die": n == culprit, "pad": pad}} for n in range(300)]
    try:
        results = grader.run_batch(rows)
        again = grader.run_batch([{"sample": "x", "item": {"n": n, "die": False}} for n in range(300)])
    finally:
        stats = executor.stats()
        grader.close()
    assert [r.ok for r in results].count(False) == 1 and not results[culprit].ok
    assert results[culprit].errors.python_grader_runtime_error
    assert [r.reward for i, r in enumerate(results) if i != culprit] == [
        float(n) for n in range(300) if n != culprit
    ]
    assert [r.reward for r in again] == [float(n) for n in range(300)]
    assert stats[0]["crashed"] >= 1


@pytest.mark.timeout(90)  # the bug this guards against is a host waiting forever
def test_a_worker_that_hangs_with_a_large_chunk_queued_behind_it_is_killed() -> None:
    # The grader ignores the worker's alarm, so the host's deadline must kill the
    # worker. The chunk sent ahead to it (larger than a pipe's buffer, so its write
    # can only finish if the worker reads it) must not keep the host waiting.
    source = textwrap.dedent(
        """
        import signal
        def grade(sample, item):
            if item["hang"]:
                signal.signal(signal.SIGALRM, signal.SIG_IGN)
                while True:
                    pass
            return 1.0
        """
    )
    executor = SandboxExecutor("process", workers=2, limits=Limits(timeout=1.0))
    grader = Grader({"type": "python", "name": "hang", "source": source}, python=executor)
    padding = "x" * 300_000  # 20 rows a chunk: 6 MB, more than any pipe or socket buffer
    rows = [{"sample": "s", "item": {"hang": n == 3, "pad": padding}} for n in range(80)]
    try:
        start = time.monotonic()
        results = grader.run_batch(rows)
        elapsed = time.monotonic() - start
    finally:
        grader.close()
    assert results[3].errors.unresponsive_reward_error
    assert [r.reward for i, r in enumerate(results) if i != 3] == [1.0] * 79
    assert elapsed < 30, elapsed


@pytest.mark.parametrize("backend", ["process", "bwrap"])
def test_the_pipe_to_a_worker_holds_a_whole_chunk(backend: str) -> None:
    require_or_skip(backend_class(backend).unavailable_reason() is None, f"the {backend} sandbox")
    import fcntl

    executor = SandboxExecutor(backend, workers=1)
    grader = Grader(
        {"type": "python", "name": "p", "source": "def grade(s, i):\n    return 1.0\n"}, python=executor
    )
    try:
        assert grader.run("x").reward == 1.0
        (pool,) = executor._pools.values()
        (slot,) = pool._live
        channel = slot.channel
        assert isinstance(channel, PipeChannel) and channel.proc.stdin is not None
        fd = channel.proc.stdin.transport.get_extra_info("pipe").fileno()
        assert fcntl.fcntl(fd, fcntl.F_GETPIPE_SZ) == 1 << 20
    finally:
        grader.close()
