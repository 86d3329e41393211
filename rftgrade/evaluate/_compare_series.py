"""Which checkpoint to keep? Several tuned runs, each against one base run.

OpenAI's dashboard listed a job's checkpoints with their validation metrics and let a
team pick one; an open trainer saves a checkpoint every few hundred steps and leaves
the pick to the team. ``rftgrade compare BASE CKPT1 CKPT2 ...`` evaluates each
checkpoint's run against the base run with :func:`compare_runs`, and says which are
shown better, which gained most, and where a sign of a grader hack first appeared
(the candidates are read in the order given, training order).

Looking at many checkpoints is looking many times: if none of five checkpoints moved,
one of their five 95% intervals would still exclude 0 about a fifth of the time.
Each interval is therefore widened so that all of them hold together at the chosen
level (Bonferroni: each at ``1 - (1 - level) / m``), and each p-value is multiplied by
``m`` to match. Picking the highest of ``m`` gains on the same rows still favours luck
(the winner's curse): the report says to confirm the pick on rows it was not picked on.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rftgrade.evaluate._compare import EvalRun, compare_runs, load_run

__all__ = ["Series", "compare_series", "each_level"]


@dataclass
class Series:
    """``series.json`` (:attr:`summary`) and each candidate's ``compare.json`` (:attr:`reports`, in order)."""

    summary: dict[str, Any]
    reports: list[dict[str, Any]]


def each_level(level: float, candidates: int) -> float:
    """The level of each of ``candidates`` intervals that hold together at ``level`` (Bonferroni)."""
    return 1.0 - (1.0 - level) / max(candidates, 1)


def _labels(paths: Sequence[Path]) -> list[str]:
    # A checkpoint's directory name says which it is (`eval-step300`); two with the same
    # name (`a/eval`, `b/eval`) are told apart by their whole path.
    names = [p.name or str(p) for p in paths]
    return [str(p) if names.count(n) > 1 else n for p, n in zip(paths, names, strict=True)]


def compare_series(
    base: EvalRun,
    candidates: Sequence[Path | EvalRun],
    *,
    level: float = 0.95,
    resamples: int = 9999,
    seed: int = 0,
) -> Series:
    """Each candidate against ``base``, intervals simultaneous at ``level``.

    A candidate given as a path is read only when its turn comes, so a long series of
    big evals holds one candidate's samples at a time.

    Raises:
        DataError: a candidate that cannot be compared with ``base`` (not an eval,
            another grader, no row in common), named by its directory.
        ValueError: no candidate.
    """
    if not candidates:
        raise ValueError("compare_series needs at least one candidate run")
    m = len(candidates)
    per = each_level(level, m)
    paths = [c if isinstance(c, Path) else c.path for c in candidates]
    for path in paths:
        # A mistyped directory late in the list is told before the first comparison's work.
        if not (path / "eval.json").is_file():
            load_run(path)  # raises the DataError that names it and the fix
    labels = _labels(paths)
    reports, rows = [], []
    for index, (candidate, label) in enumerate(zip(candidates, labels, strict=True)):
        run = load_run(candidate) if isinstance(candidate, Path) else candidate
        report = compare_runs(base, run, level=per, resamples=resamples, seed=seed)
        reports.append(report)
        p = report["p_value"]
        rows.append(
            {
                "index": index,
                "label": label,
                "dir": report["b"]["dir"],
                "model": report["b"]["model"],
                "mean_reward": report["b"]["mean_reward"],
                "pass_at_k": report["b"]["pass_at_k"],
                "rows_compared": report["rows_compared"],
                "gain": report["gain"],
                "ci": report["ci"],
                "p_value": p,
                "p_adjusted": None if p is None else min(1.0, p * m),
                "verdict": report["verdict"],
                "flags": [c["check"] for c in report["checks"] if c["flagged"]],
                "warnings": report["warnings"],
            }
        )
    first_flagged: dict[str, str] = {}
    for row in rows:
        for check in row["flags"]:
            first_flagged.setdefault(check, row["label"])
    # The highest gain is the best guess of the best checkpoint; ties go to the
    # earlier one (fewer steps from the base model).
    best = max(rows, key=lambda r: (r["gain"], -r["index"]))
    clean = [r for r in rows if not r["flags"]]
    best_clean = max(clean, key=lambda r: (r["gain"], -r["index"])) if clean else None
    summary = {
        "base": {
            "dir": reports[0]["a"]["dir"],
            "model": reports[0]["a"]["model"],
            "mean_reward": reports[0]["a"]["mean_reward"],
        },
        "ci_level": level,
        "each_ci_level": per,
        "candidates": rows,
        "shown_better": [r["label"] for r in rows if r["verdict"] == "better"],
        "shown_worse": [r["label"] for r in rows if r["verdict"] == "worse"],
        "highest_gain": best["label"],
        "highest_gain_unflagged": best_clean["label"] if best_clean else None,
        "first_flagged": first_flagged,
        "method": {
            "each": reports[0]["method"],
            "adjustment": f"Bonferroni over {m} candidates: each interval at {per:.4g}, "
            f"each p-value times {m}",
        },
    }
    return Series(summary, reports)
