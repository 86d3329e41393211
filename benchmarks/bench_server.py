"""The reward server under an RL-step load, and a soak run.

1. Throughput: a 8,192-sample batch of the seed's chip-wiring grader sent to
   ``rftgrade serve`` (sandboxed) with ``POST /v1/grade``, side by side with the
   same grader in a plain in-process loop (unsandboxed). Reports rows/s and
   p50/p99 latency of the batch requests, and of single-sample ``graders/run`` calls.
2. Soak: mixed load (big batches as rows and as GRPO groups, single calls,
   string checks, a stream) from several client threads for ``--soak-seconds``;
   samples the server's resident memory and counts sandbox workers, to show memory
   stays flat and nothing leaks.

Run: ``python -m benchmarks.bench_server [--soak-seconds 180]``; writes
``benchmarks/results/server.{json,md}``. All traffic stays on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import orjson

from benchmarks._common import parallel_capacity, write
from benchmarks.bench_sandbox import CHIP, chip_rows, in_process
from rftgrade.integrations import batch_body

SHAPES = ("full", "compact", "openrlhf")
GROUP = 16
# (samples per item, report-key suffix, request shapes): every row its own item, and
# GRPO's shape, each prompt's item shared by a group of GROUP samples (512 x 16 =
# 8,192), also sent as `groups` (each item once), as rftgrade's adapters send it.
LAYOUTS = ((1, "", SHAPES), (GROUP, "_grpo", ("full", "compact", "groups", "openrlhf")))
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
    # Each docker worker's channel directory lives only while it starts.
    channel_dirs = list(Path(tempfile.gettempdir()).glob("rftgrade-channel-*"))
    return {
        "containers": len(containers),
        "uid65534_processes": len(sandboxed),
        "channel_dirs": len(channel_dirs),
    }


def pct(values: list[float], q: float) -> float:
    """Nearest-rank percentile (p99 of a few values is their maximum)."""
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1))]


def send(client: httpx.Client, url: str, shape: str, batch: list[dict[str, Any]]) -> Any:
    """One batch as a trainer would send it: the full OpenAI-shaped answer (plain
    ``json=``), the compact answer, or OpenRLHF's request (orjson, as a trainer
    sending 8,192 rows should encode and decode)."""
    headers = {"content-type": "application/json"}
    if shape == "full":
        return client.post(url + "/v1/grade", json={"grader": "chip", "rows": batch}).json()
    if shape == "compact":
        body = orjson.dumps({"grader": "chip", "rows": batch, "compact": True})
        return orjson.loads(client.post(url + "/v1/grade", content=body, headers=headers).content)
    if shape == "groups":
        body = orjson.dumps({"grader": "chip", **batch_body(batch), "compact": True})
        return orjson.loads(client.post(url + "/v1/grade", content=body, headers=headers).content)
    body = orjson.dumps(
        {
            "query": [row["sample"] for row in batch],
            "prompts": [""] * len(batch),
            "labels": [row["item"]["reference_answer"] for row in batch],
        }
    )
    return orjson.loads(
        client.post(url + "/v1/openrlhf/reward?grader=chip", content=body, headers=headers).content
    )


def check(shape: str, answer: Any, n: int) -> None:
    if shape == "full":
        assert len(answer["results"]) == n and not any(
            r["metadata"].get("error_messages") for r in answer["results"]
        )
    elif shape in ("compact", "groups"):
        assert len(answer["rewards"]) == n and not answer["failures"], answer.get("failures", [])[:3]
    else:
        assert len(answer["rewards"]) == n and not any(answer["extra_logs"]["rftgrade_error"])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--samples", type=int, default=8192)
    parser.add_argument("--batches", type=int, default=7)
    parser.add_argument("--soak-seconds", type=float, default=180)
    parser.add_argument("--sandbox", default="auto")
    args = parser.parse_args()

    rows = chip_rows(args.samples)
    # Measured before the server starts, on an otherwise idle machine.
    capacity = parallel_capacity()
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
    report: dict[str, Any] = {
        "samples": args.samples,
        "rounds": args.batches,
        "parallel_capacity_cores": capacity,
    }
    try:
        client = httpx.Client(timeout=600)
        for _ in range(600):
            try:
                if client.get(url + "/healthz").status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        client.post(url + "/v1/grade", json={"grader": "chip", "rows": rows[:64]})  # warm the pool
        # Interleaved rounds: per layout the loop, then each request shape, on the
        # same fresh rows (distinct per round, so dedupe does not flatter the
        # numbers); ratios per round against that round's loop on the same rows.
        times: dict[str, list[float]] = {
            f"{part}{suffix}": [] for _, suffix, shapes in LAYOUTS for part in ("loop", *shapes)
        }
        capacities: list[float] = []
        for i in range(args.batches):
            # This VM's share of its host moves from minute to minute; the server
            # (2 workers and itself) gains on the loop only as far as the cores really
            # run in parallel, so each round says how far they did.
            capacities.append(parallel_capacity(rounds=1))
            for group, suffix, shapes in LAYOUTS:
                batch = chip_rows(args.samples, seed=100 + i, group=group)
                gc.collect()  # the loop starts from a clean heap: its best case
                times[f"loop{suffix}"].append(in_process(batch))
                for shape in shapes:
                    start = time.perf_counter()
                    check(shape, send(client, url, shape, batch), args.samples)
                    times[f"{shape}{suffix}"].append(time.perf_counter() - start)
        report["parallel_capacity_per_round"] = capacities
        for _, suffix, shapes in LAYOUTS:
            loop = times[f"loop{suffix}"]
            report[f"in_process_loop{suffix}_rows_per_s"] = args.samples / statistics.median(loop)
            for shape in shapes:
                mine = times[f"{shape}{suffix}"]
                ratios = [a / b for a, b in zip(loop, mine, strict=True)]
                report[f"server_{shape}{suffix}"] = {
                    "rows_per_s": args.samples / statistics.median(mine),
                    "p50_s": statistics.median(mine),
                    "p99_s": pct(mine, 0.99),
                    "vs_loop_median": statistics.median(ratios),
                    "vs_loop_min": min(ratios),
                    "vs_loop_max": max(ratios),
                    "vs_loop_per_round": ratios,
                }
        grader_json = json.loads(CHIP.read_text())
        singles = []
        for row in rows[:300]:
            start = time.perf_counter()
            client.post(
                url + "/v1/fine_tuning/alpha/graders/run",
                json={"grader": grader_json, "model_sample": row["sample"], "item": row["item"]},
            )
            singles.append(time.perf_counter() - start)
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
                    batch = chip_rows(2048, seed=1000 * kind + n, group=GROUP)
                    # Every other batch as GRPO groups (each item once), as the adapters send it.
                    body = (
                        {"grader": "chip", "rows": batch}
                        if n % 2
                        else {"grader": "chip", **batch_body(batch)}
                    )
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
                    counts["rows"] += sum(len(g["samples"]) for g in body.get("groups", [])) or len(
                        body.get("rows", [1])
                    )
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
            "workers_end": {k: last[k] for k in ("containers", "uid65534_processes", "channel_dirs")},
            "trace": samples,
        }
        print(json.dumps({k: v for k, v in report["soak"].items() if k != "trace"}, indent=1))
    finally:
        server.terminate()
        server.wait(60)
    time.sleep(2)
    report["after_shutdown_workers"] = _workers()
    s, k = report["server_single"], report["soak"]
    rows_md = []
    labels = {
        "full": "`POST /v1/grade`, full OpenAI-shaped results",
        "compact": '`POST /v1/grade`, `"compact": true`',
        "groups": '`POST /v1/grade`, `"groups"` (each item once), `"compact": true`',
        "openrlhf": "`POST /v1/openrlhf/reward`",
    }
    for group, suffix, shapes in LAYOUTS:
        layout = "every row its own item" if group == 1 else f"GRPO groups: {GROUP} samples per item"
        rows_md.append(
            f"| in-process loop, unsandboxed, {layout} | {report[f'in_process_loop{suffix}_rows_per_s']:,.0f} "
            "| 1.00x | - | - |"
        )
        for shape in shapes:
            b = report[f"server_{shape}{suffix}"]
            rows_md.append(
                f"| {labels[shape]}, {layout}, sandboxed | {b['rows_per_s']:,.0f} | "
                f"{b['vs_loop_median']:.2f}x ({b['vs_loop_min']:.2f}-{b['vs_loop_max']:.2f}) | "
                f"{b['p50_s']:.2f} s | {b['p99_s']:.2f} s |"
            )
    cases = [(shape, suffix) for _, suffix, shapes in LAYOUTS for shape in shapes]
    md = (
        "\n".join(
            [
                f"# Reward server ({args.samples:,}-sample chip-wiring batches, sandbox `{args.sandbox}`, {os.cpu_count()} cores)",
                "",
                f"Loop and requests interleaved over {args.batches} rounds; each ratio is against the loop on the "
                "same rows in the same round; median (min-max).",
                f"All {os.cpu_count()} cores busy at once do {capacity:.2f}x the work of one "
                "(`benchmarks._common.parallel_capacity`, before the server starts).",
                "",
                "| | rows/s | vs loop | p50 | p99 |",
                "|---|---:|---:|---:|---:|",
                *rows_md,
                f"| `graders/run`, 1 row | - | - | {s['p50_ms']:.1f} ms | {s['p99_ms']:.1f} ms |",
                "",
                "Per round, with the cores' parallel capacity measured just before it:",
                "",
                "| round | parallel capacity | "
                + " | ".join(f"{shape}{suffix.replace('_', ' ')}" for shape, suffix in cases)
                + " |",
                "|---:|---:|" + "---:|" * len(cases),
                *(
                    f"| {i + 1} | {report['parallel_capacity_per_round'][i]:.2f} | "
                    + " | ".join(
                        f"{report[f'server_{shape}{suffix}']['vs_loop_per_round'][i]:.2f}x"
                        for shape, suffix in cases
                    )
                    + " |"
                    for i in range(args.batches)
                ),
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
