"""Agreement, calibration and stability statistics, each from a well-kept library.

scipy (Pearson, Spearman, Kendall tau-b), scikit-learn (Cohen's kappa, confusion
matrix, ROC-AUC, Brier score), krippendorff (alpha). Only the small glue (ECE on
equal-mass bins, clustered bootstrap, flip rate) is written here. Bootstrap
intervals resample items (repeats of an item stay together) with a seeded
generator, so a report is reproducible.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

__all__ = [
    "agreement",
    "bootstrap_ci",
    "calibration",
    "nearest_label",
    "stability",
]

Metric = Callable[[np.ndarray, np.ndarray], float]


def _finite(value: float) -> float | None:
    return float(value) if value is not None and math.isfinite(value) else None


def nearest_label(values: np.ndarray, labels: Sequence[float]) -> np.ndarray:
    """Round continuous judge scores to the nearest label value (for kappa and confusion)."""
    grid = np.asarray(sorted(labels), dtype=float)
    idx = np.abs(values[:, None] - grid[None, :]).argmin(axis=1)
    return np.asarray(grid[idx])


def _pearson(j: np.ndarray, h: np.ndarray) -> float:
    from scipy.stats import pearsonr

    return float(pearsonr(j, h).statistic)


def _spearman(j: np.ndarray, h: np.ndarray) -> float:
    from scipy.stats import spearmanr

    return float(spearmanr(j, h).statistic)


def _kendall(j: np.ndarray, h: np.ndarray) -> float:
    from scipy.stats import kendalltau

    return float(kendalltau(j, h, variant="b").statistic)


def _mae(j: np.ndarray, h: np.ndarray) -> float:
    return float(np.mean(np.abs(j - h)))


def _mse(j: np.ndarray, h: np.ndarray) -> float:
    return float(np.mean(j - h))


def bootstrap_ci(
    metric: Metric, judge: np.ndarray, human: np.ndarray, *, n: int = 1000, seed: int = 0, level: float = 0.95
) -> tuple[float | None, float | None]:
    """Percentile bootstrap interval of ``metric`` over items (seeded, so reproducible)."""
    if n <= 0:
        return None, None
    rng = np.random.default_rng(seed)
    stats = []
    size = len(judge)
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        for _ in range(n):
            idx = rng.integers(0, size, size)
            try:
                value = metric(judge[idx], human[idx])
            except ValueError:  # e.g. one class only in a resample
                continue
            if math.isfinite(value):
                stats.append(value)
    if len(stats) < n // 10:
        return None, None
    lo, hi = np.quantile(stats, [(1 - level) / 2, 1 - (1 - level) / 2])
    return float(lo), float(hi)


def agreement(
    judge: np.ndarray,
    human: np.ndarray,
    *,
    labels: Sequence[float],
    threshold: float,
    seed: int = 0,
    n_boot: int = 1000,
) -> dict[str, Any]:
    """Judge (mean over repeats, one per item) against human labels, with bootstrap CIs."""
    from sklearn.metrics import cohen_kappa_score, confusion_matrix, roc_auc_score

    rounded = nearest_label(judge, labels)
    grid = sorted(labels)
    codes = {v: i for i, v in enumerate(grid)}

    def kappa_q(j: np.ndarray, h: np.ndarray) -> float:
        jr = [codes[v] for v in nearest_label(j, grid)]
        hr = [codes[v] for v in nearest_label(h, grid)]
        return float(cohen_kappa_score(hr, jr, weights="quadratic", labels=list(range(len(grid)))))

    def accuracy(j: np.ndarray, h: np.ndarray) -> float:
        return float(np.mean(nearest_label(j, grid) == nearest_label(h, grid)))

    def alpha(j: np.ndarray, h: np.ndarray) -> float:
        import krippendorff

        return float(
            krippendorff.alpha(
                reliability_data=np.vstack([h, nearest_label(j, grid)]),
                level_of_measurement="ordinal",
                value_domain=grid,
            )
        )

    def pass_agreement(j: np.ndarray, h: np.ndarray) -> float:
        return float(np.mean((j >= threshold) == (h >= threshold)))

    def auc(j: np.ndarray, h: np.ndarray) -> float:
        return float(roc_auc_score(h >= threshold, j))

    metrics: dict[str, Metric] = {
        "pearson": _pearson,
        "spearman": _spearman,
        "kendall_tau_b": _kendall,
        "mae": _mae,
        "mean_signed_error": _mse,
        "cohen_kappa_quadratic": kappa_q,
        "accuracy": accuracy,
        "krippendorff_alpha": alpha,
        "pass_agreement": pass_agreement,
        "roc_auc": auc,
    }
    out: dict[str, Any] = {}
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        for name, fn in metrics.items():
            try:
                value = _finite(fn(judge, human))
            except ValueError:
                value = None
            out[name] = value
            out[f"{name}_ci"] = (
                list(bootstrap_ci(fn, judge, human, n=n_boot, seed=seed))
                if value is not None
                else [None, None]
            )
    out["leniency"] = (
        "lenient"
        if (out["mean_signed_error"] or 0) > 0
        else "harsh"
        if (out["mean_signed_error"] or 0) < 0
        else "neutral"
    )
    out["labels"] = grid
    out["confusion_matrix"] = confusion_matrix(
        [codes[v] for v in nearest_label(human, grid)],
        [codes[v] for v in rounded],
        labels=list(range(len(grid))),
    ).tolist()
    sweep = []
    for t in np.unique(np.concatenate([np.asarray(grid, dtype=float), [threshold]])):
        hp = human >= t
        jp = judge >= t
        sweep.append(
            {
                "threshold": float(t),
                "pass_agreement": float(np.mean(hp == jp)),
                "judge_pass_rate": float(np.mean(jp)),
                "human_pass_rate": float(np.mean(hp)),
            }
        )
    out["threshold_sweep"] = sweep
    return out


def calibration(prob: np.ndarray, passed: np.ndarray, bins: int = 10) -> dict[str, Any]:
    """ECE (equal-mass bins), Brier score and a reliability table for P(pass)."""
    from sklearn.metrics import brier_score_loss

    order = np.argsort(prob, kind="stable")
    groups = [g for g in np.array_split(order, min(bins, len(prob))) if len(g)]
    table = []
    ece = 0.0
    for group in groups:
        p, y = float(np.mean(prob[group])), float(np.mean(passed[group]))
        ece += len(group) / len(prob) * abs(y - p)
        table.append({"mean_predicted": p, "observed_pass_rate": y, "count": len(group)})
    brier = (
        float(brier_score_loss(passed.astype(int), np.clip(prob, 0, 1)))
        if len(set(passed.tolist())) > 0
        else None
    )
    return {"ece": ece, "brier": brier, "reliability": table}


def stability(runs: np.ndarray, threshold: float) -> dict[str, Any]:
    """``runs``: items x repeats of judge scores (NaN for failed calls)."""
    if runs.shape[1] < 2:
        return {
            "repeats": int(runs.shape[1]),
            "flip_rate": None,
            "note": "one repeat: run with --repeats 3 or more",
        }
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        spread = np.nanstd(runs, axis=1)
        passed = runs >= threshold
        flips = []
        for row, valid in zip(passed, ~np.isnan(runs), strict=True):
            votes = row[valid]
            k = len(votes)
            if k >= 2:
                agree = votes.sum() * (votes.sum() - 1) + (k - votes.sum()) * (k - votes.sum() - 1)
                flips.append(1 - agree / (k * (k - 1)))
        run_means = np.nanmean(runs, axis=0)
    return {
        "repeats": int(runs.shape[1]),
        "flip_rate": float(np.mean(flips)) if flips else None,
        "unanimous_share": float(np.mean([f == 0 for f in flips])) if flips else None,
        "per_item_sd_median": float(np.nanmedian(spread)),
        "per_item_sd_p90": float(np.nanquantile(spread, 0.9)),
        "mean_reward_per_repeat": [float(x) for x in run_means],
        "mean_reward_sd_across_repeats": float(np.nanstd(run_means)),
    }
