"""The reward server under an RL-step load, and a soak run.

1. Throughput: a 8,192-sample batch of the seed's chip-wiring grader sent to
   ``rftgrade serve`` (sandboxed) with ``POST /v1/grade``, side by side with the
   same grader in a plain in-process loop (unsandboxed). Reports rows/s and
   p50/p99 latency of the batch requests, and of single-sample ``graders/run`` calls.
2. Soak: mixed load (big batches, single calls, string checks, a stream) from
   several client threads for ``--soak-seconds``; samples the server's resident
   memory and counts sandbox workers, to show memory stays flat and nothing leaks.

Run: ``python -m benchmarks.bench_server [--soak-seconds 180]``; writes
``benchmarks/results/server.{json,md}``. All traffic stays on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from benchmarks._common import write
from benchmarks.bench_sandbox import CHIP, chip_rows, in_process

STRING_CHECK = {
    "type": "string_check",
    "name": "eq",
    "input": "{{ sample.output_text }}",
    "reference": "{{ item.answer }}",
    "operation": "eq",
}


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _children_rss_mb(pid: int) -> float:
    out = subprocess.run(
        ["ps", "-o", "rss=", "--ppid", str(pid)], capture_output=True, text=True
    ).stdout.split()
    return sum(int(x) for x in out) / 1024


def _workers() -> dict[str, int]:
    containers = subprocess.run(
        ["docker", "ps", "-aq", "--filter", "label=rftgrade.sandbox"], capture_output=True, text=True
    ).stdout.split()
    sandboxed = subprocess.run(
        ["ps", "-o", "pid=", "-u", "65534"], capture_output=True, text=True
    ).stdout.split()
    return {"containers": len(containers), "uid65534_processes": len(sandboxed)}


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--samples", type=int, default=8192)
    parser.add_argument("--batches", type=int, default=5)
    parser.add_argument("--soak-seconds", type=float, default=180)
    parser.add_argument("--sandbox", default="auto")
    args = parser.parse_args()

    rows = chip_rows(args.samples)
    t_loop = min(in_process(rows) for _ in range(3))
    port = _port()
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "rftgrade",
            "serve",
            "--port",
            str(port),
            "--grader",
            f"chip={CHIP}",
            "--sandbox",
            args.sandbox,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    report: dict[str, Any] = {"samples": args.samples, "in_process_loop_rows_per_s": args.samples / t_loop}
    try:
        client = httpx.Client(timeout=600)
        for _ in range(600):
            try:
                if client.get(url + "/healthz").status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        client.post(url + "/v1/grade", json={"grader": "chip", "rows": rows[:64]})  # warm the pool
        latencies = []
        for i in range(args.batches):
            # Distinct rows per batch, so dedupe does not flatter the numbers.
            batch = chip_rows(args.samples, seed=100 + i)
            start = time.perf_counter()
            response = client.post(url + "/v1/grade", json={"grader": "chip", "rows": batch})
            latencies.append(time.perf_counter() - start)
            results = response.json()["results"]
            assert len(results) == args.samples and all(
                not r["metadata"].get("error_messages") for r in results
            )
        grader_json = json.loads(CHIP.read_text())
        singles = []
        for row in rows[:300]:
            start = time.perf_counter()
            client.post(
                url + "/v1/fine_tuning/alpha/graders/run",
                json={"grader": grader_json, "model_sample": row["sample"], "item": row["item"]},
            )
            singles.append(time.perf_counter() - start)
        report["server_batch"] = {
            "rows_per_s": args.samples / statistics.median(latencies),
            "p50_s": statistics.median(latencies),
            "p99_s": pct(latencies, 0.99),
            "vs_in_process_loop": (args.samples / statistics.median(latencies))
            / report["in_process_loop_rows_per_s"],
        }
        report["server_single"] = {
            "p50_ms": 1000 * statistics.median(singles),
            "p99_ms": 1000 * pct(singles, 0.99),
        }
        print(json.dumps(report, indent=1), flush=True)

        # -- soak -------------------------------------------------------------
        stop = time.time() + args.soak_seconds
        counts = {"requests": 0, "errors": 0, "rows": 0}
        lock = threading.Lock()

        def load(kind: int) -> None:
            local = httpx.Client(timeout=600)
            n = 0
            while time.time() < stop:
                n += 1
                if kind == 0:
                    body = {"grader": "chip", "rows": chip_rows(2048, seed=1000 * kind + n)}
                    r = local.post(url + "/v1/grade", json=body)
                elif kind == 1:
                    row = rows[n % len(rows)]
                    body = {"grader": grader_json, "model_sample": row["sample"], "item": row["item"]}
                    r = local.post(url + "/v1/fine_tuning/alpha/graders/run", json=body)
                elif kind == 2:
                    body = {
                        "grader": STRING_CHECK,
                        "rows": [{"sample": str(i), "item": {"answer": "1"}} for i in range(5000)],
                    }
                    r = local.post(url + "/v1/grade", json=body)
                else:
                    body = {"grader": "chip", "rows": chip_rows(1000, seed=7 * n), "stream": True}
                    r = local.post(url + "/v1/grade", json=body)
                with lock:
                    counts["requests"] += 1
                    counts["rows"] += len(body.get("rows", [1]))
                    counts["errors"] += r.status_code != 200

        threads = [threading.Thread(target=load, args=(k,)) for k in range(4)]
        for t in threads:
            t.start()
        samples = []
        while any(t.is_alive() for t in threads):
            samples.append(
                {
                    "t": round(args.soak_seconds - (stop - time.time()), 1),
                    "rss_mb": _rss_mb(server.pid),
                    "children_rss_mb": _children_rss_mb(server.pid),
                    **_workers(),
                }
            )
            time.sleep(5)
        for t in threads:
            t.join()
        first, last = samples[1] if len(samples) > 1 else samples[0], samples[-1]
        report["soak"] = {
            "seconds": args.soak_seconds,
            **counts,
            "rss_mb_after_warmup": first["rss_mb"],
            "rss_mb_end": last["rss_mb"],
            "rss_mb_max": max(s["rss_mb"] for s in samples),
            "workers_end": {k: last[k] for k in ("containers", "uid65534_processes")},
            "trace": samples,
        }
        print(json.dumps({k: v for k, v in report["soak"].items() if k != "trace"}, indent=1))
    finally:
        server.terminate()
        server.wait(60)
    time.sleep(2)
    report["after_shutdown_workers"] = _workers()
    b, s, k = report["server_batch"], report["server_single"], report["soak"]
    md = (
        "\n".join(
            [
                f"# Reward server ({args.samples:,}-sample chip-wiring batches, sandbox `{args.sandbox}`, {os.cpu_count()} cores)",
                "",
                "| | rows/s | p50 | p99 |",
                "|---|---:|---:|---:|",
                f"| in-process loop, unsandboxed | {report['in_process_loop_rows_per_s']:,.0f} | - | - |",
                f"| `POST /v1/grade`, {args.samples:,} rows, sandboxed | {b['rows_per_s']:,.0f} ({b['vs_in_process_loop']:.2f}x) | "
                f"{b['p50_s']:.2f} s | {b['p99_s']:.2f} s |",
                f"| `graders/run`, 1 row | - | {s['p50_ms']:.1f} ms | {s['p99_ms']:.1f} ms |",
                "",
                f"Soak, {k['seconds']:.0f} s of mixed load from 4 clients: {k['requests']:,} requests, {k['rows']:,} rows, "
                f"{k['errors']} errors; server RSS {k['rss_mb_after_warmup']:.0f} MB after warm-up, {k['rss_mb_end']:.0f} MB at the end "
                f"(max {k['rss_mb_max']:.0f} MB); sandbox workers at the end {k['workers_end']}, after shutdown "
                f"{report['after_shutdown_workers']}.",
            ]
        )
        + "\n"
    )
    print(f"wrote {write('server', report, md)}")


if __name__ == "__main__":
    main()
