"""Local-judge throughput on a GPU: a randomly initialised model of a real 0.5B-class
architecture (Qwen2-0.5B's shape; weights cannot be downloaded), through rftgrade's
local backend with dynamic batching. Reports samples/s per batch size and mean GPU
utilisation (nvidia-smi, sampled while it runs).

Run on a machine with CUDA: ``python -m benchmarks.bench_judge_gpu``; writes
``benchmarks/results/judge_gpu.{json,md}``. ``--cpu-smoke`` runs a shrunken model
on the CPU to check the script itself.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import threading
import time
from typing import Any

from benchmarks._common import write
from rftgrade import Grader
from rftgrade.judge import BatchScorer, ModelRoute, RoutingConfig
from rftgrade.judge.local import LocalBackend
from rftgrade.testing.tiny_lm import tiny_tokenizer


def qwen2_05b_shape(vocab: int, small: bool) -> Any:
    from transformers import Qwen2Config

    if small:
        return Qwen2Config(
            vocab_size=vocab,
            hidden_size=64,
            intermediate_size=128,
            num_hidden_layers=2,
            num_attention_heads=2,
            num_key_value_heads=1,
            max_position_embeddings=4096,
        )
    return Qwen2Config(
        vocab_size=151936,
        hidden_size=896,
        intermediate_size=4864,
        num_hidden_layers=24,
        num_attention_heads=14,
        num_key_value_heads=2,
        max_position_embeddings=32768,
        rope_theta=1000000.0,
        tie_word_embeddings=True,
    )


class GpuSampler:
    def __init__(self) -> None:
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            out = subprocess.run(
                ["nvidia-smi", "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits"],
                capture_output=True,
                text=True,
            )
            if out.returncode == 0 and out.stdout.strip():
                self.samples.append(float(out.stdout.split()[0]))
            time.sleep(0.2)

    def __enter__(self) -> GpuSampler:
        if shutil.which("nvidia-smi"):
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()

    @property
    def mean(self) -> float | None:
        return sum(self.samples) / len(self.samples) if self.samples else None


def main() -> None:
    import torch
    from transformers import AutoModelForCausalLM

    parser = argparse.ArgumentParser()
    parser.add_argument("--cpu-smoke", action="store_true")
    parser.add_argument("--requests", type=int, default=1024)
    parser.add_argument("--batch-sizes", default="1,8,32,128")
    args = parser.parse_args()
    cuda = torch.cuda.is_available()
    if not cuda and not args.cpu_smoke:
        raise SystemExit("no CUDA device: run on a GPU machine, or pass --cpu-smoke to check the script")
    device = "cuda" if cuda else "cpu"
    tokenizer = tiny_tokenizer()
    torch.manual_seed(0)
    config = qwen2_05b_shape(len(tokenizer), small=not cuda)
    config.pad_token_id = tokenizer.pad_token_id
    model = (
        AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16 if cuda else torch.float32)
        .to(device)
        .eval()
    )
    params = sum(p.numel() for p in model.parameters())
    spec = {
        "type": "score_model",
        "name": "gpu",
        "model": "local",
        "range": [1, 5],
        "input": [
            {"role": "user", "content": "Question: {{ item.q }}\nAnswer: {{ sample.output_text }}\nRate 1-5."}
        ],
    }
    n = args.requests if cuda else min(args.requests, 64)
    rows = [(f"answer {i} " + "detail " * (i % 50), {"q": f"question {i}"}) for i in range(n)]
    report: dict[str, Any] = {
        "device": torch.cuda.get_device_name() if cuda else "cpu",
        "parameters": params,
        "runs": [],
    }
    for batch in [int(b) for b in args.batch_sizes.split(",")]:
        backend = LocalBackend(model, tokenizer, mode="expected", max_batch=batch, max_wait_ms=5)
        scorer = BatchScorer(
            RoutingConfig([ModelRoute("*", backend="local", concurrency=4 * batch, timeout=3600)], "gpu"),
            cache=False,
            backends={"*": backend},
        )
        grader = Grader(spec, judge=scorer)
        grader.run_batch(rows[:batch])  # warm-up
        with GpuSampler() as sampler:
            start = time.perf_counter()
            results = grader.run_batch(rows)
            if cuda:
                torch.cuda.synchronize()
            elapsed = time.perf_counter() - start
        grader.close()
        ok = sum(r.ok for r in results)
        run = {
            "max_batch": batch,
            "samples_per_s": n / elapsed,
            "gpu_util_mean": sampler.mean,
            "ok": ok,
            "n": n,
        }
        report["runs"].append(run)
        print(run, flush=True)
    lines = [
        f"# Local judge on {report['device']} ({params / 1e6:.0f}M parameters, random init, Qwen2-0.5B shape)"
        if cuda
        else "# Local judge CPU smoke run (shrunken model)",
        "",
        "| max batch | samples/s | mean GPU util % |",
        "|---:|---:|---:|",
    ]
    for run in report["runs"]:
        util = f"{run['gpu_util_mean']:.0f}" if run["gpu_util_mean"] is not None else "-"
        lines.append(f"| {run['max_batch']} | {run['samples_per_s']:,.1f} | {util} |")
    print(
        f"wrote {write('judge_gpu' if cuda else 'judge_gpu_cpu_smoke', report, chr(10).join(lines) + chr(10))}"
    )


if __name__ == "__main__":
    main()
