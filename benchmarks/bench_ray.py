"""The Ray executor against the local pool on the same batch, and Ray's per-chunk transport cost.

Runs a loopback cluster on this machine (a head without CPUs and two 1-CPU
worker nodes: the same two cores the local pool gets), both on bwrap, warm, best
of 3 each, alternating. ``python -m benchmarks.bench_ray`` writes
``benchmarks/results/ray.{json,md}``.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from typing import Any

from benchmarks._common import write
from rftgrade._executors import PythonCalls, PythonOutcome, PythonProgram
from tests.ray._cluster import LoopbackCluster  # sets the loopback environment before ray is imported

SOURCE = (
    "def grade(sample, item):\n"
    "    x = 0\n"
    "    for k in range(20000):\n"  # ~1 ms of Python: a small unit-test-like reward
    "        x += k % 7\n"
    "    return (x + len(sample['output_text'])) % 10 / 10\n"
)
N = 4000
CHUNK = 256


class Echo:
    """Answers a chunk with outcomes without grading: what is left is Ray's transport."""

    def grade(self, calls: PythonCalls) -> list[PythonOutcome]:
        return [PythonOutcome(reward=0.5, duration=0.001)] * len(calls)

    def ping(self) -> None:
        return None


async def timed(executor: Any, program: PythonProgram, calls: PythonCalls) -> float:
    start = time.perf_counter()
    out = await executor.run(program, calls, timeout=30)
    elapsed = time.perf_counter() - start
    assert all(o.error is None for o in out), [o for o in out if o.error][:3]
    return elapsed


async def main_async() -> dict[str, Any]:
    import ray

    from rftgrade.sandbox import SandboxExecutor
    from rftgrade.sandbox.ray_pool import RayExecutor

    cluster = LoopbackCluster(workers=2)
    ray.init(address=cluster.address, log_to_driver=False)
    program = PythonProgram(SOURCE, hashlib.sha256(SOURCE.encode()).hexdigest(), "bench")
    calls = PythonCalls([f"answer {i}" for i in range(N)], [{"i": i // 16} for i in range(N)])
    local = SandboxExecutor("bwrap", workers=2)
    on_ray = RayExecutor(cluster.address, backend="bwrap")
    try:
        assert await on_ray.wait_for_actors(2, 120) == 2
        await timed(local, program, calls[:200])
        await timed(on_ray, program, calls[:200])
        local_s, ray_s = [], []
        for _ in range(3):
            local_s.append(await timed(local, program, calls))
            ray_s.append(await timed(on_ray, program, calls))
        echo = ray.remote(Echo).options(num_cpus=0).remote()
        chunk = calls[:CHUNK]
        await echo.ping.remote()
        start = time.perf_counter()
        for _ in range(50):
            await echo.ping.remote()
        ping = (time.perf_counter() - start) / 50
        start = time.perf_counter()
        for _ in range(50):
            await echo.grade.remote(chunk)
        per_chunk = (time.perf_counter() - start) / 50
        chunks = on_ray.counters["chunks"]
    finally:
        await local.aclose()
        await on_ray.aclose()
        cluster.shutdown()
    best_local, best_ray = min(local_s), min(ray_s)
    return {
        "samples": N,
        "local_pool_s": best_local,
        "ray_s": best_ray,
        "ray_vs_local": best_local / best_ray,
        "local_samples_per_s": N / best_local,
        "ray_samples_per_s": N / best_ray,
        "chunk_size": CHUNK,
        "empty_actor_call_ms": ping * 1000,
        "chunk_round_trip_ms": per_chunk * 1000,
        "transport_us_per_sample": (per_chunk - ping) / CHUNK * 1e6,
        "chunks_cut": chunks,
    }


def main() -> None:
    r = asyncio.run(main_async())
    md = (
        "| | seconds (best of 3) | samples/s |\n|---|---:|---:|\n"
        f"| local pool (bwrap, 2 workers) | {r['local_pool_s']:.2f} | {r['local_samples_per_s']:.0f} |\n"
        f"| Ray, 2 nodes x 1 CPU (bwrap) | {r['ray_s']:.2f} | {r['ray_samples_per_s']:.0f} |\n\n"
        f"Ray vs local: **{r['ray_vs_local']:.2f}x** ({r['samples']} samples of ~1 ms).\n\n"
        f"Transport: an empty actor call {r['empty_actor_call_ms']:.2f} ms; a chunk of {r['chunk_size']} calls "
        f"there and {r['chunk_size']} outcomes back {r['chunk_round_trip_ms']:.2f} ms "
        f"({r['transport_us_per_sample']:.1f} us per sample beyond the call).\n"
    )
    write("ray", r, md)
    print(md)


if __name__ == "__main__":
    main()
