"""``rftgrade grade`` against the plain script a user would write, and the sandboxed pool
against an unsandboxed ``multiprocessing`` pool; side by side, in one run.

(1) The file path, on the seed's chip-wiring grader (``grader_examples/chip_wiring``),
``--rows`` rows (50,000): a plain Python script that reads the JSONL, calls
``grade`` on each row (unsandboxed, in its own process) and writes one reward per
line, against ``rftgrade grade DATA -o OUT --sandbox B`` (full results, and
``--compact``), for B in bwrap and docker. Each side is a whole command, start-up
included, as a user times it; the same commands on a 5-row file give each one's
fixed cost (interpreter, imports, sandbox start and close). The plain script
runs under this interpreter (the trainer's) and under Debian's ``/usr/bin/python3``
(the one inside the sandboxes).

(2) The anchor: the grader in an unsandboxed ``multiprocessing.Pool`` over all
cores (what verl's parallel reward managers do), against ``Grader.run_batch`` on a
warm sandbox pool (worker isolation), on the same rows; pools warm on both sides.
The sandboxed pool runs twice a round: with this process's collector left alone (a
trainer's default) and with ``rftgrade.set_gc_pausing(True)`` (``*_gc_paused``).

Rounds are interleaved (every side once per round) and each ratio is taken within
a round: this machine's speed moves by 2x within minutes. Run: ``python -m
benchmarks.bench_grade [--rows N] [--rounds R]``; writes
``benchmarks/results/grade.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks._common import compile_package, machine, machine_busy_seconds, parallel_capacity, write
from benchmarks.bench_sandbox import CHIP, chip_rows
from rftgrade import Grader, set_gc_pausing
from rftgrade.sandbox._select import backend_class

DEBIAN_PYTHON = "/usr/bin/python3"

PLAIN = """
import json, sys
namespace = {}
exec(json.load(open(sys.argv[1]))["source"], namespace)  # unsandboxed by definition
grade = namespace["grade"]
with open(sys.argv[2]) as src, open(sys.argv[3], "w") as out:
    for line in src:
        row = json.loads(line)
        sample = {"output_text": row["sample"], "output_json": json.loads(row["sample"])}
        out.write(f"{grade(sample, row['item'])}\\n")
"""

POOL = """
import json, multiprocessing, os, sys, time

def init(source):
    global grade
    namespace = {}
    exec(source, namespace)  # unsandboxed by definition
    grade = namespace["grade"]

def one(row):
    return grade({"output_text": row["sample"], "output_json": json.loads(row["sample"])}, row["item"])

if __name__ == "__main__":
    source = json.load(open(sys.argv[1]))["source"]
    rows = [json.loads(line) for line in open(sys.argv[2])]
    cores = os.cpu_count() or 1
    times = []
    with multiprocessing.Pool(cores, initializer=init, initargs=(source,)) as pool:
        pool.map(one, rows[: 64 * cores])  # warm: workers started, grader loaded
        for _ in range(int(sys.argv[3])):
            start = time.perf_counter()
            pool.map(one, rows, chunksize=max(1, len(rows) // (8 * cores)))
            times.append(time.perf_counter() - start)
    print(json.dumps(times))
"""


def _timed(cmd: list[str]) -> tuple[float, float | None]:
    """A command's wall time, and the machine's CPU-seconds meanwhile (None: unknown)."""
    busy = machine_busy_seconds()
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    after = machine_busy_seconds()
    return wall, None if busy is None or after is None else after - busy


def _median_ratio(base: list[float], mine: list[float]) -> dict[str, float]:
    ratios = [b / m for b, m in zip(base, mine, strict=True)]
    return {
        "vs_median": statistics.median(ratios),
        "vs_min": min(ratios),
        "vs_max": max(ratios),
        "seconds_median": statistics.median(mine),
    }


def file_rounds(backends: list[str], data: Path, out: Path, rounds: int) -> dict[str, Any]:
    plain = [sys.executable, "-c", PLAIN, str(CHIP), str(data), str(out)]
    sides: dict[str, list[str]] = {"plain": plain}
    if Path(DEBIAN_PYTHON).exists():
        sides["plain_debian_python"] = [DEBIAN_PYTHON, *plain[1:]]
    for backend in backends:
        base = [sys.executable, "-m", "rftgrade", "grade", str(CHIP), str(data), "-o", str(out)]
        sides[f"grade_{backend}"] = [*base, "--sandbox", backend]
        sides[f"grade_{backend}_compact"] = [*base, "--sandbox", backend, "--compact"]
    times: dict[str, list[float]] = {name: [] for name in sides}
    cpu: dict[str, list[float | None]] = {name: [] for name in sides}
    for _ in range(rounds):
        for name, cmd in sides.items():
            wall, busy = _timed(cmd)
            times[name].append(wall)
            cpu[name].append(busy)
    cores = os.cpu_count() or 1
    report: dict[str, Any] = {}
    for name in sides:
        entry: dict[str, Any] = {"seconds_per_round": times[name]}
        entry.update(_median_ratio(times["plain"], times[name]))
        known = [c for c in cpu[name] if c is not None]
        if known:
            # No command finishes sooner than its CPU-seconds spread over every core:
            # the best ratio to the plain script this machine allows the command.
            entry["machine_cpu_seconds_median"] = statistics.median(known)
            entry["best_possible_vs_plain"] = (
                statistics.median(times["plain"]) * cores / statistics.median(known)
            )
        if "plain_debian_python" in times:
            entry["vs_plain_debian_python_median"] = _median_ratio(times["plain_debian_python"], times[name])[
                "vs_median"
            ]
        report[name] = entry
    return report


def pool_rounds(backends: list[str], data: Path, rows: list[dict[str, Any]], rounds: int) -> dict[str, Any]:
    interpreters = {"multiprocessing": sys.executable}
    if Path(DEBIAN_PYTHON).exists():
        interpreters["multiprocessing_debian_python"] = DEBIAN_PYTHON
    graders = {b: Grader(CHIP, sandbox=b) for b in backends}
    # Each sandboxed pool twice a round: as a trainer's process gets it (its collector
    # left alone) and opted in to rftgrade pausing it for the call (set_gc_pausing).
    sides = [*backends, *(f"{b}_gc_paused" for b in backends)]
    times: dict[str, list[float]] = {name: [] for name in [*interpreters, *sides]}
    failures = dict.fromkeys(sides, 0)
    try:
        for grader in graders.values():
            grader.run_batch(rows[:256])  # warm: workers started, grader loaded
        for _ in range(rounds):
            for name, python in interpreters.items():
                out = subprocess.run(
                    [python, "-c", POOL, str(CHIP), str(data), "1"],
                    capture_output=True,
                    text=True,
                    check=True,
                )
                times[name] += json.loads(out.stdout)
            for side in sides:
                grader = graders[side.removesuffix("_gc_paused")]
                set_gc_pausing(side.endswith("_gc_paused"))
                try:
                    start = time.perf_counter()
                    results = grader.run_batch(rows)
                    times[side].append(time.perf_counter() - start)
                finally:
                    set_gc_pausing(False)
                failures[side] += sum(1 for r in results if not r.ok)
                del results
    finally:
        for grader in graders.values():
            grader.close()
    report: dict[str, Any] = {}
    for name in interpreters:
        report[name] = {
            "seconds_per_round": times[name],
            "samples_per_s": len(rows) / statistics.median(times[name]),
        }
    for side in sides:
        entry: dict[str, Any] = {
            "seconds_per_round": times[side],
            "samples_per_s": len(rows) / statistics.median(times[side]),
            "failures": failures[side],
        }
        for name in interpreters:
            entry[f"vs_{name}"] = _median_ratio(times[name], times[side])
        report[f"sandboxed_{side}"] = entry
    return report


def _markdown(report: dict[str, Any]) -> str:
    lines = [
        f"# rftgrade grade vs a plain script; sandboxed vs multiprocessing ({report['rows']:,} chip-wiring rows)",
        "",
        f"{report['cores']} cores (parallel capacity {report['parallel_capacity_cores']:.2f}); "
        f"this interpreter: Python {report['machine']['python']} ({sys.executable}); "
        f"sandboxes and 'debian' sides: {report['debian_python']}. Median of {report['rounds']} interleaved rounds; "
        f"rftgrade's bytecode {'compiled first, as an installed copy has it' if report.get('rftgrade_bytecode_compiled') else 'NOT compiled'}.",
        "",
        "Machine CPU: CPU-seconds of every process on the machine during the command (its",
        "workers and the Docker engine's daemons included); no command can be faster than",
        "that spread over every core, which bounds its ratio to the plain script here.",
        "",
        "| command | seconds (median) | vs plain script | vs plain script, Debian's python "
        "| machine CPU s | best possible here |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, entry in report["file"].items():
        debian = entry.get("vs_plain_debian_python_median")
        busy = entry.get("machine_cpu_seconds_median")
        bound = entry.get("best_possible_vs_plain")
        lines.append(
            f"| {name} | {entry['seconds_median']:.2f} | {entry['vs_median']:.2f}x "
            f"({entry['vs_min']:.2f}-{entry['vs_max']:.2f}) | {'' if debian is None else f'{debian:.2f}x'} "
            f"| {'' if busy is None else f'{busy:.2f}'} | {'' if bound is None else f'{bound:.2f}x'} |"
        )
    if "startup" in report:
        lines += [
            "",
            "Fixed cost of each command (the same commands on a 5-row file):",
            "",
            "| command | seconds (median) | minus the plain script's | machine CPU s |",
            "|---|---:|---:|---:|",
        ]
        plain = report["startup"]["plain"]["seconds_median"]
        for name, entry in report["startup"].items():
            busy = entry.get("machine_cpu_seconds_median")
            lines.append(
                f"| {name} | {entry['seconds_median']:.3f} | {entry['seconds_median'] - plain:+.3f} "
                f"| {'' if busy is None else f'{busy:.2f}'} |"
            )
    lines += [
        "",
        "| pool | samples/s | vs multiprocessing | vs multiprocessing, Debian's python |",
        "|---|---:|---:|---:|",
    ]
    for name, entry in report["pool"].items():
        if not name.startswith("sandboxed_"):
            lines.append(f"| {name} | {entry['samples_per_s']:,.0f} | 1.00x | |")
            continue
        mp = entry["vs_multiprocessing"]
        deb = entry.get("vs_multiprocessing_debian_python")
        deb_text = "" if deb is None else f"{deb['vs_median']:.2f}x"
        lines.append(
            f"| {name} (worker isolation) | {entry['samples_per_s']:,.0f} | {mp['vs_median']:.2f}x "
            f"({mp['vs_min']:.2f}-{mp['vs_max']:.2f}) | {deb_text} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--output", default="grade")
    args = parser.parse_args()
    backends = [b for b in ("bwrap", "docker") if backend_class(b).unavailable_reason() is None]
    rows = chip_rows(args.rows)
    bytecode = compile_package()  # as an installed rftgrade has it (see compile_package)
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data.jsonl"
        data.write_text("".join(json.dumps(r) + "\n" for r in rows))
        small = Path(tmp) / "small.jsonl"
        small.write_text("".join(json.dumps(r) + "\n" for r in rows[:5]))
        report: dict[str, Any] = {
            "machine": machine(),
            "cores": os.cpu_count() or 1,
            "parallel_capacity_cores": parallel_capacity(),
            "rows": args.rows,
            "rounds": args.rounds,
            "rftgrade_bytecode_compiled": bytecode,
            "interpreter": sys.executable,
            "debian_python": subprocess.run(
                [DEBIAN_PYTHON, "--version"], capture_output=True, text=True
            ).stdout.strip()
            if Path(DEBIAN_PYTHON).exists()
            else None,
            "file": file_rounds(backends, data, Path(tmp) / "out.jsonl", args.rounds),
            # The same commands on a 5-row file: what each pays before and after its rows.
            "startup": file_rounds(backends, small, Path(tmp) / "out.jsonl", args.rounds),
            "pool": pool_rounds(backends, data, rows, args.rounds),
        }
    markdown = _markdown(report)
    write(args.output, report, markdown)
    print(markdown)


if __name__ == "__main__":
    main()
