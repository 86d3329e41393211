"""Sandboxed python graders vs a plain in-process loop, side by side in one run.

(a) the seed's chip-wiring F1 grader called in a plain loop in this process (what
verl's default reward manager does, unsandboxed); (b) every backend with
``worker`` isolation, interleaved with (a) round by round; (c) every isolating
backend with ``sample`` isolation (a fresh fork per sample), plus the latency of
single-sample calls for a trivial grader. Run: ``python -m benchmarks.bench_sandbox
[--samples N] [--rounds R]``; writes ``benchmarks/results/sandbox.{json,md}``.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks._common import parallel_capacity, write
from rftgrade import Grader
from rftgrade.sandbox import SandboxExecutor
from rftgrade.sandbox._select import backend_class
from rftgrade.sandbox.bwrap import BwrapBackend

CHIP = Path(__file__).resolve().parent.parent / "grader_examples" / "chip_wiring" / "grader.json"
TRIVIAL = {"type": "python", "name": "trivial", "source": "def grade(sample, item):\n    return 1.0\n"}


def chip_rows(n: int, seed: int = 0, group: int = 1) -> list[dict[str, Any]]:
    """``n`` chip-wiring rows; with ``group`` > 1, GRPO-shaped: each reference (a
    prompt's item) is shared by ``group`` consecutive samples (512 x 16 = 8,192).
    No sample repeats within its group, so no two rows are equal and dedupe grades every row."""
    rng = random.Random(seed)
    names = [f"SIG_{i}" for i in range(40)]
    rows: list[dict[str, Any]] = []
    while len(rows) < n:
        ref = [
            {"name": rng.choice(names), "value": str(rng.randint(0, 64))} for _ in range(rng.randint(4, 12))
        ]
        item = {"reference_answer": ref}
        texts: set[str] = set()
        for _ in range(min(group, n - len(rows))):
            for _attempt in range(100):
                # Real groups do repeat completions (dedupe grades those once); not here.
                pred = [d if rng.random() > 0.3 else {"name": rng.choice(names), "value": "0"} for d in ref]
                text = json.dumps({"predicted": pred})
                if text not in texts:
                    break
            texts.add(text)
            rows.append({"sample": text, "item": item})
    return rows


LOOP = """
import json, sys, time
source, rows = json.load(sys.stdin)
namespace = {}
exec(source, namespace)  # the baseline is unsandboxed by definition
grade = namespace["grade"]
start = time.perf_counter()
for row in rows:
    grade({"output_text": row["sample"], "output_json": json.loads(row["sample"])}, row["item"])
print(time.perf_counter() - start)
"""


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


def loop_under(python: str, rows: list[dict[str, Any]]) -> float | None:
    """The same loop run by another interpreter (the one inside the sandbox), for reference."""
    payload = json.dumps([json.loads(CHIP.read_text())["source"], rows])
    try:
        out = subprocess.run(
            [python, "-c", LOOP], input=payload, capture_output=True, text=True, timeout=300, check=True
        )
        return float(out.stdout.strip())
    except (OSError, subprocess.SubprocessError, ValueError):
        return None


def latencies(grader: Grader, rows: list[dict[str, Any]]) -> dict[str, float]:
    """Single-sample calls on a warm pool: what one `graders/run` costs."""
    times = []
    for row in rows[:200]:
        t0 = time.perf_counter()
        grader.run_batch([row])
        times.append(time.perf_counter() - t0)
    times.sort()
    return {
        "single_call_p50_ms": 1000 * statistics.median(times),
        "single_call_p99_ms": 1000 * times[int(0.99 * (len(times) - 1))],
    }


def sandboxed(backend: str, isolation: str, rows: list[dict[str, Any]], spec: Any) -> dict[str, Any]:
    executor = SandboxExecutor(backend, isolation=isolation)
    grader = Grader(spec, python=executor)
    try:
        grader.run_batch(rows[: 4 * executor.workers])  # warm the pool: workers started, grader loaded
        start = time.perf_counter()
        results = grader.run_batch(rows)
        elapsed = time.perf_counter() - start
        failures = sum(1 for r in results if not r.ok)
        lat = latencies(grader, rows)
    finally:
        grader.close()
    return {"seconds": elapsed, "samples_per_s": len(rows) / elapsed, "failures": failures, **lat}


def worker_rounds(backends: list[str], rows: list[dict[str, Any]], rounds: int) -> dict[str, Any]:
    """(a) and (b), interleaved: each round times the loop and then every backend on the
    same rows, so that a slow moment of this shared machine hits all of them alike;
    the ratio is taken within each round and the median round is reported."""
    graders = {b: Grader(CHIP, python=SandboxExecutor(b, isolation="worker")) for b in backends}
    times: dict[str, list[float]] = {"loop": [], **{b: [] for b in backends}}
    failures = dict.fromkeys(backends, 0)
    try:
        for grader in graders.values():
            grader.run_batch(rows[:64])  # warm: workers started, grader loaded
        for _ in range(rounds):
            # Each run starts from a collected heap with no earlier results alive: the
            # loop's own collections otherwise walk them (its time varied 2x with that).
            gc.collect()
            times["loop"].append(in_process(rows))
            for backend, grader in graders.items():
                gc.collect()
                start = time.perf_counter()
                results = grader.run_batch(rows)
                times[backend].append(time.perf_counter() - start)
                failures[backend] += sum(1 for r in results if not r.ok)
                del results
        report: dict[str, Any] = {
            "rounds": rounds,
            "in_process_loop": {
                "samples_per_s": len(rows) / statistics.median(times["loop"]),
                "seconds_per_round": times["loop"],
            },
        }
        for backend, grader in graders.items():
            ratios = [loop / mine for loop, mine in zip(times["loop"], times[backend], strict=True)]
            report[f"{backend}_worker"] = {
                "samples_per_s": len(rows) / statistics.median(times[backend]),
                "vs_loop_median": statistics.median(ratios),
                "vs_loop_min": min(ratios),
                "vs_loop_max": max(ratios),
                "seconds_per_round": times[backend],
                "failures": failures[backend],
                **latencies(grader, rows),
            }
    finally:
        for grader in graders.values():
            grader.close()
    return report


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--samples", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--sample-isolation-samples", type=int, default=2_000)
    parser.add_argument(
        "--output",
        default="sandbox",
        help="results name (e.g. sandbox_debian_python for another interpreter)",
    )
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    rows = chip_rows(args.samples)
    backends = [b for b in ("docker", "bwrap", "process") if backend_class(b).unavailable_reason() is None]
    report: dict[str, Any] = {
        "cores": cores,
        "parallel_capacity_cores": parallel_capacity(),
        "samples": args.samples,
        **worker_rounds(backends, rows, args.rounds),
    }
    base = report["in_process_loop"]["samples_per_s"]
    print(f"(a) in-process loop: {base:,.0f} samples/s (median of {args.rounds} rounds)")
    for backend in backends:
        r = report[f"{backend}_worker"]
        print(
            f"(b) {backend:7s} worker : {r['samples_per_s']:,.0f} samples/s, {r['vs_loop_median']:.2f}x the loop "
            f"(rounds {r['vs_loop_min']:.2f}-{r['vs_loop_max']:.2f}), failures {r['failures']}"
        )
    venv_python = BwrapBackend().venv / "bin" / "python"
    if venv_python.exists():
        # The sandboxes run their own interpreter (Debian's python3 here), which may be
        # faster or slower than the trainer's: the same loop under it, for reference.
        seconds = loop_under(str(venv_python), rows)
        if seconds:
            report["loop_under_sandbox_python"] = {
                "python": str(venv_python),
                "samples_per_s": args.samples / seconds,
            }
            print(
                f"    the same loop under the sandbox's interpreter: {args.samples / seconds:,.0f} samples/s"
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
    lines = [
        f"# Sandboxed python graders ({args.samples:,} chip-wiring samples, {cores} cores, "
        f"host Python {platform.python_version()} at {sys.executable})",
        "",
        f"(a) and (b) interleaved over {args.rounds} rounds; ratios are per round, median (min-max). "
        f"All {cores} cores busy at once do {report['parallel_capacity_cores']:.2f}x the work of one "
        "(`benchmarks._common.parallel_capacity`).",
        "",
        "| run | samples/s | vs in-process loop | single-call p50 / p99 (ms) |",
        "|---|---:|---:|---:|",
        f"| (a) in-process loop, unsandboxed | {base:,.0f} | 1.00x | - |",
    ]
    for key, value in report.items():
        if not isinstance(value, dict) or "single_call_p99_ms" not in value:
            continue
        label = key.replace("_", " ")
        if key.endswith("_worker"):
            ratio = f"{value['vs_loop_median']:.2f}x ({value['vs_loop_min']:.2f}-{value['vs_loop_max']:.2f})"
            n = args.samples
        else:
            ratio = f"{value['samples_per_s'] / base:.2f}x"
            n = args.sample_isolation_samples
        lines.append(
            f"| {label} ({n:,}) | {value['samples_per_s']:,.0f} | {ratio} | "
            f"{value['single_call_p50_ms']:.1f} / {value['single_call_p99_ms']:.1f} |"
        )
    if "loop_under_sandbox_python" in report:
        lines += [
            "",
            f"For reference, the same loop under the sandbox's interpreter "
            f"(`{report['loop_under_sandbox_python']['python']}`): "
            f"{report['loop_under_sandbox_python']['samples_per_s']:,.0f} samples/s.",
        ]
    path = write(args.output, report, "\n".join(lines) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
