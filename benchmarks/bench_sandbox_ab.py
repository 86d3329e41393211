"""Worker isolation, this tree against an earlier commit, interleaved round by round.

A change to the sandbox (hardening, a new wire) should leave ``worker`` isolation's
speed as it was; two runs minutes apart cannot say so on a machine whose speed
moves 2x within minutes. This benchmark checks out ``--base`` (default: the commit
before this round's sandbox work) into a temporary worktree, builds that tree's
docker image under a tag of its own, and then alternates the two trees round by
round: each round, each tree, in a process of its own, times the in-process loop
and then its sandboxed pool (worker isolation) on the same rows, so each tree's
ratio to the loop is taken within a moment, and the two trees' ratios are compared
within a round. Run: ``python -m benchmarks.bench_sandbox_ab [--base REV]``;
writes ``benchmarks/results/sandbox_ab.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from benchmarks._common import machine, parallel_capacity, write
from rftgrade.sandbox._select import backend_class

ROOT = Path(__file__).resolve().parent.parent

# Runs inside each tree (PYTHONPATH): the tree's own rftgrade and worker.
MEASURE = """
import gc, json, sys, time
from benchmarks.bench_sandbox import CHIP, chip_rows, in_process
from rftgrade import Grader
from rftgrade.sandbox import SandboxExecutor
backend, n = sys.argv[1], int(sys.argv[2])
rows = chip_rows(n)
grader = Grader(CHIP, python=SandboxExecutor(backend, isolation="worker"))
try:
    grader.run_batch(rows[:64])  # warm: workers started, grader loaded
    gc.collect()
    loop = in_process(rows)
    gc.collect()
    start = time.perf_counter()
    results = grader.run_batch(rows)
    sandboxed = time.perf_counter() - start
    failures = sum(1 for r in results if not r.ok)
finally:
    grader.close()
print(json.dumps({"loop": loop, "sandboxed": sandboxed, "failures": failures}))
"""


def _tree(base: str, where: Path) -> Path:
    subprocess.run(
        ["git", "-C", str(ROOT), "worktree", "add", "--detach", str(where), base],
        check=True,
        capture_output=True,
    )
    return where


def _env(tree: Path, image: str) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(tree), "RFTGRADE_SANDBOX_IMAGE": image}


def _measure(tree: Path, image: str, backend: str, n: int) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-c", MEASURE, backend, str(n)],
        cwd=tree,
        env=_env(tree, image),
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--base", default="9df4086", help="the commit to compare with")
    parser.add_argument("--samples", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    backends = [b for b in ("docker", "bwrap") if backend_class(b).unavailable_reason() is None]
    head_image = os.environ.get("RFTGRADE_SANDBOX_IMAGE", "rftgrade/sandbox:latest")
    base_image = f"rftgrade/sandbox:ab-{args.base}"
    with tempfile.TemporaryDirectory() as tmp:
        base_tree = _tree(args.base, Path(tmp) / "base")
        try:
            if "docker" in backends:
                subprocess.run(
                    [sys.executable, "-m", "rftgrade", "sandbox", "build", "--backend", "docker"],
                    cwd=base_tree,
                    env=_env(base_tree, base_image),
                    check=True,
                    capture_output=True,
                )
            trees = {"base": (base_tree, base_image), "head": (ROOT, head_image)}
            ratios: dict[str, dict[str, list[float]]] = {b: {"base": [], "head": []} for b in backends}
            failures = {b: {"base": 0, "head": 0} for b in backends}
            for round_no in range(args.rounds):
                order = ["base", "head"] if round_no % 2 == 0 else ["head", "base"]
                for backend in backends:
                    for side in order:
                        tree, image = trees[side]
                        got = _measure(tree, image, backend, args.samples)
                        ratios[backend][side].append(got["loop"] / got["sandboxed"])
                        failures[backend][side] += got["failures"]
        finally:
            subprocess.run(
                ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(base_tree)], capture_output=True
            )
    report: dict[str, Any] = {
        "machine": machine(),
        "parallel_capacity_cores": parallel_capacity(),
        "base": args.base,
        "samples": args.samples,
        "rounds": args.rounds,
    }
    lines = [
        f"# Worker isolation: this tree vs {args.base} ({args.samples:,} chip-wiring rows, "
        f"{args.rounds} interleaved rounds)",
        "",
        "Each tree's speed as a multiple of the in-process loop timed just before it, then head/base per round.",
        "",
        "| backend | base vs loop | head vs loop | head / base, median (min-max) |",
        "|---|---:|---:|---:|",
    ]
    for backend in backends:
        base_r, head_r = ratios[backend]["base"], ratios[backend]["head"]
        per_round = [h / b for h, b in zip(head_r, base_r, strict=True)]
        report[backend] = {
            "base_vs_loop": base_r,
            "head_vs_loop": head_r,
            "head_over_base_median": statistics.median(per_round),
            "head_over_base": per_round,
            "failures": failures[backend],
        }
        lines.append(
            f"| {backend} | {statistics.median(base_r):.2f}x | {statistics.median(head_r):.2f}x | "
            f"{statistics.median(per_round):.2f} ({min(per_round):.2f}-{max(per_round):.2f}) |"
        )
    markdown = "\n".join(lines) + "\n"
    write("sandbox_ab", report, markdown)
    print(markdown)


if __name__ == "__main__":
    main()
