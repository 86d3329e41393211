"""``rftgrade calibrate``: how far a grader (usually an LLM judge) can be trusted.

Runs the grader ``repeats`` times over human-labelled rows and measures agreement
with the humans (with bootstrap CIs), calibration of its pass probability,
stability across repeats, cheap-answer probes, and failures (counted, and bounded
with failures taken as worst and as best). The report never grades anything
itself: every score comes from :class:`~rftgrade.Grader`.
"""

from __future__ import annotations

import hashlib
import json
import math
import platform
import time
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from rftgrade._grader import Grader
from rftgrade._specs import LabelModelGrader, MultiGrader, ScoreModelGrader, grader_parts
from rftgrade.quality._probes import QUESTION_KEYS, build_probes, find_key, sample_shape
from rftgrade.quality._runner import (
    RunLog,
    evaluate_probes,
    grader_range,
    nan_if_failed,
    pass_probability,
    run_repeats,
)
from rftgrade.quality._stats import agreement, calibration, stability

__all__ = ["CalibrationGates", "calibrate", "gate_failures", "human_values"]


def human_values(rows: list[dict[str, Any]], grader: Grader) -> tuple[np.ndarray, list[float]]:
    """Human labels as numbers, and the label grid. Label names map to 1 (passing) / 0
    for a ``label_model``; numbers are used as they are."""
    raw = [row.get("label") for row in rows]
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in raw):
        values = np.array(raw, dtype=float)
        grid = sorted(set(values.tolist()))
        return values, grid
    spec = grader.spec
    if isinstance(spec, LabelModelGrader):
        unknown = sorted({str(v) for v in raw if v not in spec.labels})
        if unknown:
            raise ValueError(f"human labels {unknown} are not among the grader's labels {spec.labels}")
        return np.array([1.0 if v in spec.passing_labels else 0.0 for v in raw]), [0.0, 1.0]
    bad = sorted({repr(v) for v in raw if not isinstance(v, (int, float)) or isinstance(v, bool)})[:5]
    raise ValueError(
        f"each row needs a numeric `label` on the grader's range (or a label name for a label_model); got {bad}"
    )


def _prompt_hash(grader: Grader) -> str:
    parts = grader_parts(grader.spec)
    prompts = [
        p.model_dump(mode="json").get("input")
        for p in parts
        if isinstance(p, (ScoreModelGrader, LabelModelGrader))
    ]
    blob = json.dumps(prompts or [grader.to_dict()], sort_keys=True).encode()
    return "sha256:" + hashlib.sha256(blob).hexdigest()[:16]


def _models(grader: Grader) -> list[str]:
    parts = grader_parts(grader.spec)
    return sorted({p.model for p in parts if isinstance(p, (ScoreModelGrader, LabelModelGrader))})


def _sampling(grader: Grader) -> dict[str, Any]:
    spec = grader.spec
    parts = list(spec.graders.items()) if isinstance(spec, MultiGrader) else [("", spec)]
    out = {}
    for key, part in parts:
        if isinstance(part, ScoreModelGrader) and part.sampling_params is not None:
            out[key or part.name] = part.sampling_params.model_dump(exclude_none=True)
    return out


@dataclass(frozen=True)
class CalibrationGates:
    """Limits a judge must respect before it grades a training run; any breach fails calibrate.

    ``None`` turns a gate off.
    """

    min_kappa: float | None = 0.4
    """Quadratic-weighted Cohen's kappa with the human labels (0.4: "moderate" agreement)."""
    min_spearman: float | None = None
    """Spearman rank correlation with the human labels."""
    min_pass_agreement: float | None = None
    """Share of items where judge and humans agree on pass/fail at the threshold."""
    max_probe_max_rate: float | None = 0.5
    """Share of a should-fail probe's answers that may get the maximum score (the probe table flags any)."""
    max_failure_rate: float | None = 0.05
    """Share of judge calls that may fail (error flag)."""


def gate_failures(report: dict[str, Any], gates: CalibrationGates) -> list[str]:
    """Why the report fails its gates (empty: it passes)."""
    failures = []
    agreement = report.get("agreement", {})
    for key, limit, label in (
        ("cohen_kappa_quadratic", gates.min_kappa, "quadratic kappa"),
        ("spearman", gates.min_spearman, "Spearman rho"),
        ("pass_agreement", gates.min_pass_agreement, "pass/fail agreement"),
    ):
        if limit is None:
            continue
        value = agreement.get(key)
        if value is None or not math.isfinite(value):
            failures.append(
                f"{label} could not be computed (too few graded items); the gate needs >= {limit}"
            )
        elif value < limit:
            failures.append(f"{label} {value:.2f} < {limit}: the judge disagrees with the human labels")
    if gates.max_probe_max_rate is not None:
        for name, probe in (report.get("probes") or {}).items():
            if probe["expect"] == "min" and probe["max_score_rate"] > gates.max_probe_max_rate:
                failures.append(
                    f"probe {name} ({probe['description']}) gets the maximum score "
                    f"{probe['max_score_rate']:.0%} of the time (> {gates.max_probe_max_rate:.0%}): a policy can learn it"
                )
    f = report["failures"]
    rate = f["failed_calls"] / f["calls"] if f["calls"] else 0.0
    if gates.max_failure_rate is not None and rate > gates.max_failure_rate:
        failures.append(f"{rate:.1%} of judge calls failed (> {gates.max_failure_rate:.1%}): {f['by_flag']}")
    return failures


def calibrate(
    grader: Grader,
    rows: list[dict[str, Any]],
    *,
    repeats: int = 3,
    threshold: float | None = None,
    seed: int = 0,
    n_boot: int = 1000,
    score_range: tuple[float, float] | None = None,
    probes: bool = True,
    worst: int = 10,
    gates: CalibrationGates | None = None,
) -> dict[str, Any]:
    """Build the calibration report (a JSON-ready dict). ``rows``: ``{"item", "sample", "label"}``.

    ``report["passed"]`` is the verdict of ``gates`` (default :class:`CalibrationGates`),
    ``report["gate_failures"]`` says why not.
    """
    started = time.perf_counter()
    human, grid = human_values(rows, grader)
    lo, hi = grader_range(grader, score_range)
    if isinstance(grader.spec, LabelModelGrader):
        lo, hi = 0.0, 1.0
    threshold = float(threshold if threshold is not None else (lo + hi) / 2)
    log = RunLog()
    passes = run_repeats(grader, rows, repeats, log)
    runs = np.array([[nan_if_failed(p[i]) for p in passes] for i in range(len(rows))], dtype=float)
    failed_items = np.all(np.isnan(runs), axis=1)
    with np.errstate(all="ignore"):
        judge_mean = np.nanmean(np.where(np.isnan(runs), np.nan, runs), axis=1)
    ok = ~failed_items
    report: dict[str, Any] = {}
    report["agreement"] = (
        agreement(judge_mean[ok], human[ok], labels=grid, threshold=threshold, seed=seed, n_boot=n_boot)
        if ok.sum() >= 3
        else {"note": "fewer than 3 items graded without failure"}
    )
    # Failures bounded: as the worst possible score, and as the best.
    bounds = {}
    for name, fill in (("failures_as_worst", lo), ("failures_as_best", hi)):
        filled = np.where(np.isnan(judge_mean), fill, judge_mean)
        a = agreement(filled, human, labels=grid, threshold=threshold, seed=seed, n_boot=0)
        bounds[name] = {k: a[k] for k in ("mae", "spearman", "pass_agreement", "cohen_kappa_quadratic")}
    probs = np.array(
        [
            [pass_probability(p[i], grader, lo, hi) if p[i].ok else np.nan for p in passes]
            for i in range(len(rows))
        ]
    )
    with np.errstate(all="ignore"):
        p_mean = np.nanmean(probs, axis=1)
    report["calibration"] = calibration(p_mean[ok], (human[ok] >= threshold).astype(float))
    report["calibration"]["source"] = (
        "label probabilities"
        if any("label_probabilities" in p[0].scores for p in [passes[0]] if p)
        else "expected score"
        if any("expected_score" in r.scores for r in passes[0])
        else "normalised score"
    )
    report["stability"] = stability(runs, threshold)
    flag_counts = dict(log.flags)
    report["failures"] = {
        "calls": int(runs.size),
        "failed_calls": int(np.isnan(runs).sum()),
        "failed_items": int(failed_items.sum()),
        "by_flag": flag_counts,
        "bounds": bounds,
    }
    if probes:
        best = {i: rows[i]["sample"] for i in range(len(rows)) if human[i] >= max(grid)}
        built = build_probes(rows, best_samples=best, seed=seed, shape=sample_shape(grader.spec))
        report["probes"] = evaluate_probes(grader, built, lo, hi, threshold=threshold, log=log)
    qkey = find_key([r.get("item") or {} for r in rows], QUESTION_KEYS)
    gaps = np.abs(np.nan_to_num(judge_mean, nan=lo) - human)
    report["worst_disagreements"] = [
        {
            "index": int(i),
            "question": str((rows[i].get("item") or {}).get(qkey, ""))[:400] if qkey else "",
            "sample": str(rows[i]["sample"])[:600],
            "human": float(human[i]),
            "judge_mean": None if math.isnan(judge_mean[i]) else float(judge_mean[i]),
            "judge_runs": [None if math.isnan(x) else float(x) for x in runs[i]],
            "judge_reasoning": _reasoning(passes[0][i]),
        }
        for i in np.argsort(-gaps, kind="stable")[:worst]
    ]
    tokens = log.tokens()
    calls = len(log.results)
    report["provenance"] = {
        "grader_id": grader.id,
        "grader_name": grader.name,
        "grader_type": grader.type,
        "models": _models(grader),
        "prompt_hash": _prompt_hash(grader),
        "sampling_params": _sampling(grader),
        "seed": seed,
        "bootstrap_resamples": n_boot,
        "items": len(rows),
        "repeats": repeats,
        "grader_calls": calls,
        "threshold": threshold,
        "range": [lo, hi],
        "labels": grid,
        "tokens": tokens,
        "tokens_per_1000_samples": {k: 1000 * v / max(calls, 1) for k, v in tokens.items()},
        "seconds_per_1000_samples": 1000 * log.seconds / max(calls, 1),
        "wall_seconds": time.perf_counter() - started,
        "python": platform.python_version(),
    }
    report["per_item"] = [
        {
            "index": i,
            "human": float(human[i]),
            "judge_runs": [None if math.isnan(x) else float(x) for x in runs[i]],
        }
        for i in range(len(rows))
    ]
    gates = gates or CalibrationGates()
    report["gates"] = asdict(gates)
    report["gate_failures"] = gate_failures(report, gates)
    report["passed"] = not report["gate_failures"]
    return report


def _reasoning(result: Any) -> str:
    steps = result.scores.get("steps")
    if isinstance(steps, list):
        return " | ".join(str(s.get("conclusion", "")) for s in steps if isinstance(s, dict))[:400]
    if result.error_messages:
        return "; ".join(result.error_messages)[:400]
    return ""
