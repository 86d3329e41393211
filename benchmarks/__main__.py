"""``python -m benchmarks``: run every benchmark and write benchmarks/results/."""

from __future__ import annotations

import subprocess
import sys

MODULES = [
    "benchmarks.bench_deterministic",
    "benchmarks.bench_sandbox",
    "benchmarks.bench_grade",
    "benchmarks.bench_judge",
    "benchmarks.bench_server",
    "benchmarks.bench_eval",
    "benchmarks.bench_adapters",
    "benchmarks.bench_ray",
]


def main() -> int:
    status = 0
    for module in MODULES + sys.argv[1:]:
        print(f"== {module}", flush=True)
        status |= subprocess.call([sys.executable, "-m", module])
    return status


if __name__ == "__main__":
    raise SystemExit(main())
