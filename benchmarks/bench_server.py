"""The reward server under an RL-step load, and a soak run.

1. Throughput: a 8,192-sample batch of the seed's chip-wiring grader sent to
   ``rftgrade serve`` (sandboxed) with ``POST /v1/grade``, side by side with the
   same grader in a plain in-process loop (unsandboxed). Reports rows/s and
   p50/p99 latency of the batch requests, and of single-sample ``graders/run`` calls.
2. Soak: mixed load (big batches as rows and as GRPO groups, single calls,
   string checks, a stream) from several client threads for ``--soak-seconds``;
   samples the server's resident memory and counts sandbox workers, to show memory
   stays flat and nothing leaks.
3. Full vs compact answers: the same 8,192 rows sent to ``POST /v1/grade`` for a
   full OpenAI-shaped result per row and for ``"compact": true``, side by side in
   interleaved rounds, for a deterministic grader (``string_check``) and for the
   chip-wiring python grader on a server of its own (``--compare-sandbox``,
   default ``process``). The client encodes and decodes with orjson either way, so
   the answer is the only difference; each round's ratio is compact time / full
   time (full rows/s over compact rows/s), at the answer's last byte and decoded.

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
STRING_CHECK_CHIP = {
    "type": "string_check",
    "name": "exact",
    "input": "{{ sample.output_text }}",
    "reference": "{{ item.reference_answer }}",
    "operation": "eq",
}
"""A deterministic grader over the chip rows (for part 3; nearly every reward is 0)."""
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


def _start_server(port: int, sandbox: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            *(sys.executable, "-m", "rftgrade", "serve", "--port", str(port)),
            *("--grader", f"chip={CHIP}", "--sandbox", sandbox),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _wait_healthy(client: httpx.Client, url: str) -> None:
    for _ in range(600):
        try:
            if client.get(url + "/healthz").status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError(f"no server at {url}")


def _timed_grade(
    client: httpx.Client, url: str, grader: Any, rows: list[Any], compact: bool
) -> tuple[float, float]:
    """Seconds to the answer's last byte, and to the answer decoded (orjson both ways)."""
    body = orjson.dumps({"grader": grader, "rows": rows, "compact": compact})
    start = time.perf_counter()
    response = client.post(url + "/v1/grade", content=body, headers={"content-type": "application/json"})
    received = time.perf_counter()
    answer = orjson.loads(response.content)
    decoded = time.perf_counter()
    assert response.status_code == 200, response.text[:300]
    assert len(answer["rewards" if compact else "results"]) == len(rows)
    return received - start, decoded - start


def full_vs_compact(samples: int, rounds: int, sandbox: str) -> dict[str, Any]:
    """Part 3: full vs compact answers on the same rows, per grader (see the module doc)."""
    port = _port()
    url = f"http://127.0.0.1:{port}"
    server = _start_server(port, sandbox)
    graders = {"string_check": STRING_CHECK_CHIP, "python_chip": "chip"}
    out: dict[str, Any] = {"sandbox": sandbox, "samples": samples, "rounds": rounds}
    try:
        client = httpx.Client(timeout=600)
        _wait_healthy(client, url)
        for grader in graders.values():  # compile, start the pool, warm both paths
            for compact in (True, False):
                _timed_grade(client, url, grader, chip_rows(512), compact)
        times: dict[tuple[str, bool], list[tuple[float, float]]] = {
            (name, compact): [] for name in graders for compact in (True, False)
        }
        for i in range(rounds):
            rows = chip_rows(samples, seed=500 + i)
            for name, grader in graders.items():
                # Alternate which goes first, so neither always meets a warmer machine.
                for compact in (i % 2 == 0, i % 2 == 1):
                    gc.collect()
                    times[(name, compact)].append(_timed_grade(client, url, grader, rows, compact))
        for name in graders:
            compact_t, full_t = times[(name, True)], times[(name, False)]
            entry: dict[str, Any] = {}
            for k, stage in enumerate(("received", "decoded")):
                ratios = [c[k] / f[k] for c, f in zip(compact_t, full_t, strict=True)]
                entry[stage] = {
                    "compact_rows_per_s": samples / statistics.median(c[k] for c in compact_t),
                    "full_rows_per_s": samples / statistics.median(f[k] for f in full_t),
                    "full_vs_compact_median": statistics.median(ratios),
                    "full_vs_compact_min": min(ratios),
                    "full_vs_compact_max": max(ratios),
                    "full_vs_compact_per_round": ratios,
                }
            out[name] = entry
    finally:
        server.terminate()
        server.wait(60)
    return out


def _full_vs_compact_md(part: dict[str, Any]) -> list[str]:
    lines = [
        "",
        f"Full vs compact answers, {part['samples']:,} chip-wiring rows, the same rows side by side over "
        f"{part['rounds']} interleaved rounds (python grader on sandbox `{part['sandbox']}`; client orjson both "
        f"ways, Python {sys.version.split()[0]}); full/compact = full rows/s over compact rows/s, median (min-max):",
        "",
        "| grader | at | compact rows/s | full rows/s | full/compact |",
        "|---|---|---:|---:|---:|",
    ]
    for name in ("string_check", "python_chip"):
        for stage, words in (("received", "last byte received"), ("decoded", "decoded by the client")):
            e = part[name][stage]
            lines.append(
                f"| {name} | {words} | {e['compact_rows_per_s']:,.0f} | {e['full_rows_per_s']:,.0f} | "
                f"{e['full_vs_compact_median']:.2f}x ({e['full_vs_compact_min']:.2f}-{e['full_vs_compact_max']:.2f}) |"
            )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--samples", type=int, default=8192)
    parser.add_argument("--batches", type=int, default=7)
    parser.add_argument("--soak-seconds", type=float, default=180)
    parser.add_argument("--sandbox", default="auto")
    parser.add_argument("--compare-sandbox", default="process", help="the python grader's sandbox in part 3")
    parser.add_argument("--compare-rounds", type=int, default=9)
    args = parser.parse_args()

    rows = chip_rows(args.samples)
    # Measured before the server starts, on an otherwise idle machine.
    capacity = parallel_capacity()
    port = _port()
    url = f"http://127.0.0.1:{port}"
    server = _start_server(port, args.sandbox)
    report: dict[str, Any] = {
        "samples": args.samples,
        "rounds": args.batches,
        "parallel_capacity_cores": capacity,
    }
    try:
        client = httpx.Client(timeout=600)
        _wait_healthy(client, url)
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
    report["full_vs_compact"] = full_vs_compact(args.samples, args.compare_rounds, args.compare_sandbox)
    print(json.dumps({k: v for k, v in report["full_vs_compact"].items()}, indent=1), flush=True)
    s, k = report["server_single"], report["soak"]
    rows_md = []
    labels = {
        "full": "`POST /v1/grade`, full OpenAI-shaped results (client: httpx `json=`, stdlib json)",
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
                *_full_vs_compact_md(report["full_vs_compact"]),
            ]
        )
        + "\n"
    )
    print(f"wrote {write('server', report, md)}")


if __name__ == "__main__":
    main()
