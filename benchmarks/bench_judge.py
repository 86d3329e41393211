"""Judge throughput: batched vs one-at-a-time, against a loopback OpenAI-compatible
server (20 ms per request, like a fast hosted judge) and the local transformers
backend (tiny random LM, dynamic batching), measured side by side in one run.

Run: ``python -m benchmarks.bench_judge``; writes ``benchmarks/results/judge.{json,md}``.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from benchmarks._common import write
from rftgrade import Grader
from rftgrade.judge import BatchScorer, ModelRoute, RoutingConfig
from rftgrade.judge.local import LocalBackend
from rftgrade.testing import FakeJudgeServer
from rftgrade.testing.tiny_lm import tiny_causal_lm

SPEC = {
    "type": "score_model",
    "name": "bench",
    "model": "judge",
    "input": [{"role": "user", "content": "{{ item.directive }} Rate: {{ sample.output_text }}"}],
}


def timed(grader: Grader, rows: list[tuple[str, dict[str, Any]]], batched: bool) -> float:
    start = time.perf_counter()
    results = grader.run_batch(rows) if batched else [grader.run(sample, item) for sample, item in rows]
    elapsed = time.perf_counter() - start
    assert all(r.ok for r in results), [r.error_messages for r in results if not r.ok][:3]
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--http-requests", type=int, default=200)
    parser.add_argument("--local-requests", type=int, default=64)
    args = parser.parse_args()
    report: dict[str, Any] = {}
    with FakeJudgeServer() as server:
        routing = RoutingConfig([ModelRoute("*", base_url=server.base_url, concurrency=32)], "bench")
        for batched in (False, True):
            grader = Grader(SPEC, judge=BatchScorer(routing, cache=False))
            rows = [
                (f"answer {i}", {"directive": f"MODE:slow:0.02 SCORE=0.5 #{i}"})
                for i in range(args.http_requests)
            ]
            elapsed = timed(grader, rows, batched)
            grader.close()
            report[f"http_{'batched' if batched else 'sequential'}"] = {
                "requests": len(rows),
                "requests_per_s": len(rows) / elapsed,
            }
    model, tokenizer = tiny_causal_lm(hidden=64, layers=2)
    for mode in ("expected", "generate"):
        for batched in (False, True):
            backend = LocalBackend(model, tokenizer, mode=mode, max_new_tokens=16, max_batch=32)
            scorer = BatchScorer(
                RoutingConfig([ModelRoute("*", backend="local", concurrency=64, timeout=600)], "bench"),
                cache=False,
                backends={"*": backend},
            )
            grader = Grader({**SPEC, "range": [1, 5]}, judge=scorer)
            n = args.local_requests
            rows = [(f"answer {i}", {"directive": "Rate it."}) for i in range(n)]
            grader.run_batch(rows[:2])  # warm-up
            start = time.perf_counter()
            results = grader.run_batch(rows) if batched else [grader.run(s, i) for s, i in rows]
            elapsed = time.perf_counter() - start
            grader.close()
            assert all(r.ok or r.errors.model_grader_parse_error for r in results)
            report[f"local_{mode}_{'batched' if batched else 'sequential'}"] = {
                "requests": n,
                "requests_per_s": n / elapsed,
                "mean_batch": sum(backend.batches) / len(backend.batches),
            }
    lines = [
        "# Judge throughput (requests/s)",
        "",
        "| path | one at a time | batched | speed-up |",
        "|---|---:|---:|---:|",
    ]
    for prefix, label in (
        ("http", "loopback HTTP judge, 20 ms/request"),
        ("local_expected", "local LM, probability-weighted"),
        ("local_generate", "local LM, generate 16 tokens"),
    ):
        seq, bat = (
            report[f"{prefix}_sequential"]["requests_per_s"],
            report[f"{prefix}_batched"]["requests_per_s"],
        )
        lines.append(f"| {label} | {seq:,.1f} | {bat:,.1f} | {bat / seq:.1f}x |")
        print(lines[-1])
    print(f"wrote {write('judge', report, chr(10).join(lines) + chr(10))}")


if __name__ == "__main__":
    main()
