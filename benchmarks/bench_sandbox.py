"""Sandboxed python graders vs a plain in-process loop, side by side in one run.

(a) the seed's chip-wiring F1 grader called in a plain loop in this process (what
verl's default reward manager does, unsandboxed); (b) every backend with
``worker`` isolation; (c) every isolating backend with ``sample`` isolation (a
fresh fork per sample), plus the latency of single-sample calls for a trivial
grader. Run: ``python -m benchmarks.bench_sandbox [--samples N]``; writes
``benchmarks/results/sandbox.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import time
from pathlib import Path
from typing import Any

from benchmarks._common import write
from rftgrade import Grader
from rftgrade.sandbox import SandboxExecutor
from rftgrade.sandbox._select import backend_class

CHIP = Path(__file__).resolve().parent.parent / "grader_examples" / "chip_wiring" / "grader.json"
TRIVIAL = {"type": "python", "name": "trivial", "source": "def grade(sample, item):\n    return 1.0\n"}


def chip_rows(n: int, seed: int = 0) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    names = [f"SIG_{i}" for i in range(40)]
    rows = []
    for _ in range(n):
        ref = [
            {"name": rng.choice(names), "value": str(rng.randint(0, 64))} for _ in range(rng.randint(4, 12))
        ]
        pred = [d if rng.random() > 0.3 else {"name": rng.choice(names), "value": "0"} for d in ref]
        rows.append({"sample": json.dumps({"predicted": pred}), "item": {"reference_answer": ref}})
    return rows


def in_process(rows: list[dict[str, Any]]) -> float:
    """The unsandboxed baseline: exec the grader once, call grade() in a loop."""
    namespace: dict[str, Any] = {}
    exec(json.loads(CHIP.read_text())["source"], namespace)  # the baseline is unsandboxed by definition
    grade = namespace["grade"]
    start = time.perf_counter()
    for row in rows:
        sample = {"output_text": row["sample"], "output_json": json.loads(row["sample"])}
        grade(sample, row["item"])
    return time.perf_counter() - start


def sandboxed(backend: str, isolation: str, rows: list[dict[str, Any]], spec: Any) -> dict[str, Any]:
    executor = SandboxExecutor(backend, isolation=isolation)
    grader = Grader(spec, python=executor)
    try:
        grader.run_batch(rows[: 4 * executor.workers])  # warm the pool: workers started, grader loaded
        start = time.perf_counter()
        results = grader.run_batch(rows)
        elapsed = time.perf_counter() - start
        failures = sum(1 for r in results if not r.ok)
        latencies = []
        for row in rows[:200]:
            t0 = time.perf_counter()
            grader.run_batch([row])
            latencies.append(time.perf_counter() - t0)
    finally:
        grader.close()
    latencies.sort()
    return {
        "seconds": elapsed,
        "samples_per_s": len(rows) / elapsed,
        "failures": failures,
        "single_call_p50_ms": 1000 * statistics.median(latencies),
        "single_call_p99_ms": 1000 * latencies[int(0.99 * (len(latencies) - 1))],
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--samples", type=int, default=10_000)
    parser.add_argument("--sample-isolation-samples", type=int, default=2_000)
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    rows = chip_rows(args.samples)
    t_plain = min(in_process(rows) for _ in range(3))
    report: dict[str, Any] = {
        "cores": cores,
        "samples": args.samples,
        "in_process_loop": {"samples_per_s": args.samples / t_plain, "seconds": t_plain},
    }
    print(f"(a) in-process loop: {args.samples / t_plain:,.0f} samples/s")
    backends = [b for b in ("docker", "bwrap", "process") if backend_class(b).unavailable_reason() is None]
    for backend in backends:
        r = sandboxed(backend, "worker", rows, CHIP)
        report[f"{backend}_worker"] = r
        print(
            f"(b) {backend:7s} worker : {r['samples_per_s']:,.0f} samples/s "
            f"({r['samples_per_s'] / report['in_process_loop']['samples_per_s']:.2f}x the loop), failures {r['failures']}"
        )
    small = rows[: args.sample_isolation_samples]
    for backend in [b for b in backends if b != "process"]:
        r = sandboxed(backend, "sample", small, CHIP)
        report[f"{backend}_sample"] = r
        t = sandboxed(backend, "sample", small, TRIVIAL)
        report[f"{backend}_sample_trivial"] = t
        print(
            f"(c) {backend:7s} sample : chip {r['samples_per_s']:,.0f}/s; trivial {t['samples_per_s']:,.0f}/s "
            f"= {t['samples_per_s'] / cores:,.0f}/s per core, single-call p99 {t['single_call_p99_ms']:.1f} ms"
        )
    base = report["in_process_loop"]["samples_per_s"]
    lines = [
        f"# Sandboxed python graders ({args.samples:,} chip-wiring samples, {cores} cores)",
        "",
        "| run | samples/s | vs in-process loop | single-call p50 / p99 (ms) |",
        "|---|---:|---:|---:|",
        f"| (a) in-process loop, unsandboxed | {base:,.0f} | 1.00x | - |",
    ]
    for key, value in report.items():
        if isinstance(value, dict) and "single_call_p99_ms" in value:
            n = args.samples if key.endswith("_worker") else args.sample_isolation_samples
            label = key.replace("_", " ")
            lines.append(
                f"| {label} ({n:,}) | {value['samples_per_s']:,.0f} | {value['samples_per_s'] / base:.2f}x | "
                f"{value['single_call_p50_ms']:.1f} / {value['single_call_p99_ms']:.1f} |"
            )
    path = write("sandbox", report, "\n".join(lines) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
