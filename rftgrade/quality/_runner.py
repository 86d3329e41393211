"""Running a grader for quality reports: repeats, probes, and the numbers they give."""

from __future__ import annotations

import math
import time
from collections import Counter
from typing import Any

import numpy as np

from rftgrade._grader import Grader
from rftgrade._result import GradeResult
from rftgrade._specs import LabelModelGrader, ScoreModelGrader
from rftgrade.quality._probes import Probe

__all__ = ["RunLog", "evaluate_probes", "grader_range", "run_repeats"]


def grader_range(grader: Grader, override: tuple[float, float] | None = None) -> tuple[float, float]:
    """The reward range: ``score_model.range``, else [0, 1] (override for python / multi)."""
    if override is not None:
        return override
    spec = grader.spec
    if isinstance(spec, ScoreModelGrader) and spec.range:
        return float(spec.range[0]), float(spec.range[1])
    return 0.0, 1.0


class RunLog:
    """Every result of a run, with tokens and time, for provenance."""

    def __init__(self) -> None:
        self.results: list[GradeResult] = []
        self.seconds = 0.0
        self.flags: Counter[str] = Counter()

    def add(self, results: list[GradeResult], seconds: float) -> None:
        self.results += results
        self.seconds += seconds
        for r in results:
            self.flags.update(r.errors.raised())

    def tokens(self) -> dict[str, int]:
        total = Counter[str]()
        for r in self.results:
            for usage in r.token_usage_per_model.values():
                total.update(usage.to_dict())
        return dict(total)


def run_repeats(
    grader: Grader, rows: list[dict[str, Any]], repeats: int, log: RunLog
) -> list[list[GradeResult]]:
    """``repeats`` independent passes over ``rows`` (callers disable judge caches)."""
    passes = []
    for _ in range(repeats):
        start = time.perf_counter()
        results = grader.run_batch(rows)
        log.add(results, time.perf_counter() - start)
        passes.append(results)
    return passes


def pass_probability(result: GradeResult, grader: Grader, lo: float, hi: float) -> float:
    """The judge's own P(pass): label probabilities where given, else the normalised score."""
    spec = grader.spec
    probs = result.scores.get("label_probabilities")
    if isinstance(spec, LabelModelGrader) and isinstance(probs, dict):
        return float(sum(p for label, p in probs.items() if label in spec.passing_labels))
    return min(max((result.reward - lo) / (hi - lo), 0.0), 1.0)


def evaluate_probes(
    grader: Grader,
    probes: list[Probe],
    lo: float,
    hi: float,
    *,
    threshold: float,
    log: RunLog,
    probe_threshold: float = 0.5,
) -> dict[str, Any]:
    """Score every probe once; flag the ones a sound grader would not pass."""
    out: dict[str, Any] = {}
    span = hi - lo
    reference_mean = None
    for probe in sorted(probes, key=lambda p: p.name != "reference"):
        start = time.perf_counter()
        results = grader.run_batch(probe.rows)
        log.add(results, time.perf_counter() - start)
        rewards = np.array([r.reward for r in results], dtype=float)
        norm = (rewards - lo) / span
        entry: dict[str, Any] = {
            "description": probe.description,
            "expect": probe.expect,
            "n": len(results),
            "mean_score": float(np.mean(rewards)),
            "max_score_rate": float(np.mean(rewards >= hi - 1e-9 * max(1.0, abs(hi)))),
            "pass_rate": float(np.mean(rewards >= threshold)),
            "error_rate": float(np.mean([not r.ok for r in results])),
            "worst_example": None,
        }
        if probe.expect == "min":
            entry["flagged"] = bool(np.mean(norm) > probe_threshold * 0.5 or entry["max_score_rate"] > 0)
            worst = int(np.argmax(rewards))
            entry["worst_example"] = {
                "sample": str(probe.rows[worst]["sample"])[:300],
                "score": float(rewards[worst]),
            }
        elif probe.expect == "max":
            reference_mean = float(np.mean(rewards))
            entry["flagged"] = bool(np.mean(norm) < 1 - probe_threshold * 0.5)
        elif probe.expect == "not_above_reference":
            base = reference_mean if reference_mean is not None else hi
            entry["flagged"] = bool(np.mean(rewards) > base + 0.05 * span)
            entry["reference_mean_score"] = base
        else:  # descending ladder
            ordered, start_at = [], 0
            for size in probe.groups:
                steps = rewards[start_at : start_at + size]
                start_at += size
                ordered.append(bool(np.all(np.diff(steps) <= 1e-9)))
            entry["ladder_order_rate"] = float(np.mean(ordered)) if ordered else None
            entry["mean_score_by_step"] = _by_step(rewards, probe.groups)
            entry["flagged"] = bool(ordered and np.mean(ordered) < 0.8)
        out[probe.name] = entry
    return out


def _by_step(rewards: np.ndarray, groups: list[int]) -> list[float]:
    steps: dict[int, list[float]] = {}
    start = 0
    for size in groups:
        for k in range(size):
            steps.setdefault(k, []).append(float(rewards[start + k]))
        start += size
    return [float(np.mean(v)) for _, v in sorted(steps.items())]


def nan_if_failed(result: GradeResult) -> float:
    return math.nan if not result.ok else float(result.reward)
