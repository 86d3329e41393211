"""Shared helpers: seeded text generation, timing, and writing results files."""

from __future__ import annotations

import json
import os
import platform
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"

WORDS = (
    "the customer invoice refund charged twice march account email update app crashes camera android "
    "model answer reference total amount paid order shipped late support ticket billing plan upgrade "
    "password reset login error page loads slowly network timeout server returned status code request "
    "report summary analysis revenue quarter growth percent market share price stock fell rose today"
).split()


def sentences(n: int, words: int, seed: int = 0) -> list[tuple[str, str]]:
    """``n`` (hypothesis, reference) pairs of ``words`` words; hypotheses are noisy copies."""
    rng = random.Random(seed)
    pairs = []
    for _ in range(n):
        ref = [rng.choice(WORDS) for _ in range(words)]
        hyp = [w if rng.random() > 0.3 else rng.choice(WORDS) for w in ref]
        pairs.append((" ".join(hyp), " ".join(ref)))
    return pairs


def best_of(repeats: int, fn: Callable[[], Any]) -> float:
    """Fastest wall time of ``repeats`` runs (least disturbed by the rest of the machine)."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def machine_busy_seconds() -> float | None:
    """CPU-seconds every process of this machine has spent so far (``/proc/stat``:
    all but idle and iowait), or ``None`` where there is no ``/proc/stat``.

    Taken around a whole command it counts what the command's own process does not:
    its sandbox workers, and the Docker engine's daemons starting and removing them.
    """
    try:
        with open("/proc/stat") as fh:
            fields = [int(v) for v in fh.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    ticks = os.sysconf("SC_CLK_TCK")
    return (sum(fields) - fields[3] - fields[4]) / ticks


def compile_package() -> bool:
    """Write rftgrade's bytecode, as ``pip install rftgrade`` does, before a benchmark
    times whole ``rftgrade`` commands; ``True`` if every module compiled.

    An editable checkout is not compiled by pip, and where ``PYTHONDONTWRITEBYTECODE``
    is set (this machine, many container images) each command compiled rftgrade's 54
    modules from source again: ~40 ms a start that no installed copy pays.
    """
    import compileall

    import rftgrade

    return bool(compileall.compile_dir(Path(rftgrade.__file__).parent, quiet=1))


_SPIN = "import time\nt = time.perf_counter()\nx = 0\nfor i in range(4_000_000):\n    x += i % 7\nprint(time.perf_counter() - t)\n"


def parallel_capacity(rounds: int = 3) -> float:
    """How much work all cores together do, in units of one busy core.

    The same pure-Python loop runs alone, then once per core at the same time;
    ``cores * alone / together``. An ideal machine gives the core count; virtual
    CPUs that share physical cores give less. A sandboxed batch (host plus one
    worker per core) can at best be this many times faster than one in-process
    loop, before paying for crossing the process boundary.
    """
    import os
    import subprocess
    import sys

    cores = os.cpu_count() or 1
    ratios = []
    for _ in range(rounds):
        alone = float(subprocess.run([sys.executable, "-c", _SPIN], capture_output=True, text=True).stdout)
        procs = [
            subprocess.Popen([sys.executable, "-c", _SPIN], stdout=subprocess.PIPE, text=True)
            for _ in range(cores)
        ]
        together = max(float(p.communicate()[0]) for p in procs)
        ratios.append(cores * alone / together)
    return sorted(ratios)[len(ratios) // 2]


def machine() -> dict[str, Any]:
    import os

    return {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform()}


def write(name: str, payload: dict[str, Any], markdown: str) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps({"machine": machine(), **payload}, indent=2) + "\n")
    (RESULTS / f"{name}.md").write_text(markdown)
    return path
