"""``rftgrade eval`` against a loopback model with a fixed 20 ms per request.

Side by side in one run (interleaved rounds, medians): samples/s with
``--concurrency 1`` and ``--concurrency 32``, and, for each, the share of the
run's wall time spent grading and the share during which the endpoint had at
least one request in flight (the two overlap: grading runs while samples are
fetched). Graders: a ``string_check`` (grading costs next to nothing) and a
``python`` grader in the sandbox (``--sandbox``, default auto), whose grading is
real work. The model is :mod:`rftgrade.testing.fake_model` in its own process, so
its CPU is not charged to the client.

Run: ``python -m benchmarks.bench_eval [--rounds 3]``; writes
``benchmarks/results/eval.{json,md}``. All traffic stays on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from benchmarks._common import write
from rftgrade import Grader
from rftgrade.evaluate import EvalConfig, run_eval

LATENCY = 0.020
STRING_CHECK = {
    "type": "string_check",
    "name": "exact",
    "input": "{{ sample.output_text }}",
    "reference": "{{ item.reference_answer }}",
    "operation": "eq",
}
PYTHON = {
    "type": "python",
    "name": "exact_py",
    "source": (
        "def grade(sample, item):\n"
        "    return 1.0 if sample['output_text'].strip() == item['reference_answer'] else 0.0\n"
    ),
}
MODES = ("right", "wrong", "alternate", "alternate")


def dataset(path: Path, rows: int, tag: str) -> Path:
    # Prompts unique per run (`tag`): the model's per-prompt call counts start afresh.
    with path.open("w") as fh:
        for i in range(rows):
            answer = f"a{i}"
            prompt = f"{tag} q{i} answer={answer} mode={MODES[i % len(MODES)]}"
            fh.write(
                json.dumps({"messages": [{"role": "user", "content": prompt}], "reference_answer": answer})
                + "\n"
            )
    return path


def one(grader: Grader, base_url: str, rows: int, n: int, concurrency: int, tag: str) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        data = dataset(Path(tmp) / "data.jsonl", rows, tag)
        config = EvalConfig(model="bench", samples_per_row=n, base_url=base_url, concurrency=concurrency)
        outcome = run_eval(grader, data, Path(tmp) / "out", config)
    report = outcome.report
    assert report["samples"]["not_sampled"] == 0 and report["rows_scored"] == rows, report["samples"]
    # Every fourth row right, every fourth wrong, half alternate: a check the run graded what it sampled.
    assert report["share_zero_variance"] == 0.5, report["share_zero_variance"]
    t = report["timing"]
    samples = rows * n
    return {
        "samples": samples,
        "wall_s": t["wall_s"],
        "samples_per_s": samples / t["wall_s"],
        "grading_share": t["grading_s"] / t["wall_s"],
        "endpoint_busy_share": t["endpoint_busy_s"] / t["wall_s"],
        "mean_request_ms": 1000 * t["request_s_total"] / t["requests"],
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--sandbox", default="auto")
    parser.add_argument("-n", type=int, default=8)
    args = parser.parse_args()

    model = subprocess.Popen(
        [sys.executable, "-m", "rftgrade.testing.fake_model", "--latency", str(LATENCY)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert model.stdout is not None
    base_url = model.stdout.readline().strip()
    sizes = {1: 16, 32: 96}  # rows per run: about 3 s at concurrency 1, ~1-2 s at 32
    report: dict[str, Any] = {"latency_ms": LATENCY * 1000, "samples_per_row": args.n, "rounds": args.rounds}
    try:
        from rftgrade.sandbox import SandboxExecutor

        graders = {
            "string_check": Grader(STRING_CHECK),
            "python": Grader(PYTHON, python=SandboxExecutor(args.sandbox)),
        }
        report["sandbox"] = graders["python"].runtime.python.name  # type: ignore[union-attr]
        one(graders["python"], base_url, 4, 2, 8, "warm")  # start the sandbox pool outside the timings
        runs: dict[str, list[dict[str, Any]]] = {}
        for r in range(args.rounds):
            for name, grader in graders.items():
                for concurrency, rows in sizes.items():
                    key = f"{name}_c{concurrency}"
                    runs.setdefault(key, []).append(
                        one(grader, base_url, rows, args.n, concurrency, f"r{r}-{key}")
                    )
        for grader in graders.values():
            grader.close()
    finally:
        model.terminate()
        model.wait(timeout=10)
    for key, results in runs.items():
        report[key] = {
            field: statistics.median(x[field] for x in results)
            for field in ("samples_per_s", "grading_share", "endpoint_busy_share", "mean_request_ms")
        }
        report[key]["samples"] = results[0]["samples"]
        report[key]["per_round_samples_per_s"] = [x["samples_per_s"] for x in results]
    for name in ("string_check", "python"):
        ratios = [
            a["samples_per_s"] / b["samples_per_s"]
            for a, b in zip(runs[f"{name}_c32"], runs[f"{name}_c1"], strict=True)
        ]
        report[f"{name}_speedup_c32_vs_c1"] = statistics.median(ratios)
    lines = [
        f"# rftgrade eval: loopback model, {LATENCY * 1000:.0f} ms per request, n={args.n}",
        "",
        f"Median of {args.rounds} interleaved rounds; python grader in the `{report['sandbox']}` sandbox.",
        "",
        "| grader | concurrency | samples | samples/s | grading share | endpoint busy share | mean request ms |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for key in runs:
        name, _, c = key.rpartition("_c")
        x = report[key]
        lines.append(
            f"| {name} | {c} | {x['samples']} | {x['samples_per_s']:.1f} | {x['grading_share']:.1%} | "
            f"{x['endpoint_busy_share']:.1%} | {x['mean_request_ms']:.1f} |"
        )
    lines += [
        "",
        f"Speed-up of concurrency 32 over 1: string_check {report['string_check_speedup_c32_vs_c1']:.1f}x, "
        f"python {report['python_speedup_c32_vs_c1']:.1f}x.",
    ]
    print(json.dumps(report, indent=1))
    print(f"wrote {write('eval', report, chr(10).join(lines) + chr(10))}")


if __name__ == "__main__":
    main()
