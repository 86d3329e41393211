"""``rftgrade check``: is this grader fit to train against? Gates a training run in CI.

Grades model samples grouped by prompt (as an RL step produces them) and reports
the reward distribution, the share of prompts whose samples all score the
minimum or all the maximum (no learning signal for GRPO-style advantages), the
mean within-group variance, error rates by flag, the slowest samples, and the
cheap-answer probes. Gates turn those numbers into a pass/fail verdict.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from rftgrade._grader import Grader
from rftgrade.quality._probes import build_probes, sample_shape
from rftgrade.quality._runner import RunLog, evaluate_probes, grader_range

__all__ = ["Gates", "check_grader"]


@dataclass(frozen=True)
class Gates:
    """Limits a grader must respect; any breach fails the check."""

    max_error_rate: float = 0.05
    """Share of samples with any error flag."""
    max_flat_group_share: float = 0.5
    """Share of prompt groups whose samples all score the same (at any value: min, max or between)."""
    min_within_group_sd: float = 0.0
    """Mean within-group standard deviation of rewards must exceed this."""
    max_probe_score: float = 0.5
    """Normalised mean score any should-fail probe may reach (0 = range min, 1 = max)."""


def _group_key(row: dict[str, Any], key: str | None) -> str:
    if "group" in row:
        return json.dumps(row["group"], sort_keys=True, default=str)
    item = row.get("item") or {}
    if key and key in item:
        return json.dumps(item[key], sort_keys=True, default=str)
    if "messages" in item:  # an RFT row: its prompt is the group (other fields may vary per sample)
        return json.dumps([item["messages"], item.get("tools")], sort_keys=True, default=str)
    return json.dumps(item, sort_keys=True, default=str)


def check_grader(
    grader: Grader,
    rows: list[dict[str, Any]],
    *,
    gates: Gates | None = None,
    group_key: str | None = None,
    score_range: tuple[float, float] | None = None,
    probes: bool = True,
    seed: int = 0,
    slowest: int = 5,
) -> dict[str, Any]:
    """Run the checks; ``report["passed"]`` is the verdict, ``report["gate_failures"]`` why not."""
    gates = gates or Gates()
    lo, hi = grader_range(grader, score_range)
    log = RunLog()
    start = time.perf_counter()
    results = grader.run_batch(rows)
    log.add(results, time.perf_counter() - start)
    rewards = np.array([r.reward for r in results], dtype=float)
    errored = np.array([not r.ok for r in results])
    groups: dict[str, list[int]] = defaultdict(list)
    for i, row in enumerate(rows):
        groups[_group_key(row, group_key)].append(i)
    multi = [idx for idx in groups.values() if len(idx) > 1]
    eps = 1e-9 * max(1.0, abs(hi))
    all_min = sum(1 for idx in multi if np.all(rewards[idx] <= lo + eps))
    all_max = sum(1 for idx in multi if np.all(rewards[idx] >= hi - eps))
    # Any group whose samples all score alike gives GRPO a zero advantage, not only all-min or
    # all-max ones (a group all at 0.063 teaches nothing either).
    flat = sum(1 for idx in multi if float(np.ptp(rewards[idx])) <= eps)
    sds = [float(np.std(rewards[idx])) for idx in multi]
    counts, edges = np.histogram(rewards, bins=10, range=(lo, hi) if hi > lo else None)
    order = np.argsort([-r.execution_time for r in results], kind="stable")[:slowest]
    report: dict[str, Any] = {
        "grader": {"id": grader.id, "name": grader.name, "type": grader.type, "range": [lo, hi]},
        "samples": len(rows),
        "groups": len(groups),
        "groups_with_several_samples": len(multi),
        "reward": {
            "mean": float(np.mean(rewards)) if len(rewards) else None,
            "sd": float(np.std(rewards)) if len(rewards) else None,
            "min": float(np.min(rewards)) if len(rewards) else None,
            "max": float(np.max(rewards)) if len(rewards) else None,
            "histogram": {"counts": counts.tolist(), "edges": [float(e) for e in edges]},
        },
        "flat_groups": {
            "all_min_share": all_min / len(multi) if multi else None,
            "all_max_share": all_max / len(multi) if multi else None,
            "flat_share": flat / len(multi) if multi else None,
            "flat_other_share": (flat - all_min - all_max) / len(multi) if multi else None,
        },
        "mean_within_group_sd": float(np.mean(sds)) if sds else None,
        "errors": {"rate": float(np.mean(errored)) if len(errored) else 0.0, "by_flag": dict(log.flags)},
        "slowest": [
            {
                "index": int(i),
                "seconds": results[i].execution_time,
                "sample": str(rows[i].get("sample"))[:200],
            }
            for i in order
        ],
        "seconds_per_1000_samples": 1000 * log.seconds / max(len(rows), 1),
    }
    if probes:
        threshold = (lo + hi) / 2
        report["probes"] = evaluate_probes(
            grader,
            build_probes(rows, seed=seed, shape=sample_shape(grader.spec)),
            lo,
            hi,
            threshold=threshold,
            log=RunLog(),
            probe_threshold=gates.max_probe_score * 2,
        )
    failures = []
    if report["errors"]["rate"] > gates.max_error_rate:
        failures.append(f"error rate {report['errors']['rate']:.1%} > {gates.max_error_rate:.1%}")
    flat = report["flat_groups"]
    if flat["flat_share"] is not None and flat["flat_share"] > gates.max_flat_group_share:
        failures.append(
            f"{flat['flat_share']:.0%} of prompt groups score the same on every sample "
            f"({flat['all_min_share']:.0%} all-min, {flat['all_max_share']:.0%} all-max, "
            f"{flat['flat_other_share']:.0%} flat elsewhere; > {gates.max_flat_group_share:.0%}): "
            "no learning signal for GRPO"
        )
    if (
        report["mean_within_group_sd"] is not None
        and report["mean_within_group_sd"] <= gates.min_within_group_sd
    ):
        failures.append(
            f"mean within-group SD {report['mean_within_group_sd']:.3f} <= {gates.min_within_group_sd}"
        )
    for name, probe in (report.get("probes") or {}).items():
        if probe["expect"] == "min":
            norm = (probe["mean_score"] - lo) / (hi - lo)
            if norm > gates.max_probe_score:
                failures.append(
                    f"probe {name} ({probe['description']}) scores {norm:.2f} of the range "
                    f"(> {gates.max_probe_score})"
                )
    report["gates"] = asdict(gates)
    report["gate_failures"] = failures
    report["passed"] = not failures
    return report
