"""What the base model's rewards say about a dataset: pass@k and learning signal.

GRPO learns from the spread of rewards within a prompt's group: a row whose N
samples all score the same (all 0, all 1, or all 0.4) gives it no gradient. The
shares here count such rows; ``pass_at_k`` uses the unbiased estimator of Chen et
al. (2021), ``1 - C(n-c, k) / C(n, k)`` averaged over rows, computed in exact
fractions so a test (or a reader) can check it digit for digit.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from fractions import Fraction
from typing import Any

__all__ = ["RowRewards", "pass_at_k", "row_pass_at_k", "summarize_rows"]


class RowRewards:
    """One row's graded samples (in ``n`` order) and whether all ``N`` were sampled."""

    __slots__ = ("complete", "flags", "index", "line", "missing", "reasons", "rewards")

    def __init__(
        self,
        index: int,
        line: int,
        rewards: list[float],
        *,
        missing: int = 0,
        reasons: list[str] | None = None,
        flags: Counter[str] | None = None,
    ) -> None:
        self.index = index
        self.line = line
        self.rewards = rewards
        self.missing = missing
        self.complete = missing == 0
        self.reasons = reasons or []
        self.flags = flags or Counter()


def row_pass_at_k(n: int, c: int, k: int) -> Fraction:
    """Probability that at least one of ``k`` of the ``n`` samples passes, ``c`` passing."""
    if k > n:
        raise ValueError(f"k={k} is more than the n={n} samples")
    if n - c < k:
        return Fraction(1)
    return 1 - Fraction(math.comb(n - c, k), math.comb(n, k))


def pass_at_k(passes: Sequence[tuple[int, int]], k: int) -> float:
    """Mean of :func:`row_pass_at_k` over ``(n, c)`` rows (NaN for no rows)."""
    if not passes:
        return math.nan
    return float(sum((row_pass_at_k(n, c, k) for n, c in passes), Fraction(0)) / len(passes))


def _std(values: Sequence[float]) -> float:
    # Population SD: the spread GRPO normalises advantages by.
    if min(values) == max(values):
        return 0.0  # exactly: the mean of equal floats need not equal them
    mean = math.fsum(values) / len(values)
    return math.sqrt(math.fsum((v - mean) ** 2 for v in values) / len(values))


def summarize_rows(
    rows: Sequence[RowRewards],
    *,
    samples_per_row: int,
    threshold: float,
    score_range: tuple[float, float],
) -> dict[str, Any]:
    """``eval.json``'s statistics. Only rows with all ``samples_per_row`` samples graded
    count; the others are listed as not sampled, never scored 0."""
    lo, hi = score_range
    scored = [r for r in rows if r.complete]
    passes = [(len(r.rewards), sum(1 for x in r.rewards if x >= threshold)) for r in scored]
    every = [x for r in scored for x in r.rewards]
    flags: Counter[str] = Counter()
    for r in rows:
        flags.update(r.flags)
    stds = {r.index: _std(r.rewards) for r in scored}
    count = len(scored)

    def share(test: Any) -> float | None:
        return sum(1 for r in scored if test(r)) / count if count else None

    per_row: list[dict[str, Any]] = []
    for r in rows:
        entry: dict[str, Any] = {
            "row": r.index,
            "line": r.line,
            "sampled": r.complete,
            "mean": math.fsum(r.rewards) / len(r.rewards) if r.complete else None,
            "std": stds.get(r.index),
            "rewards": r.rewards,
        }
        if not r.complete:
            entry["missing_samples"] = r.missing
            entry["not_sampled_because"] = sorted(set(r.reasons))[:3]
        per_row.append(entry)
    return {
        "rows_scored": count,
        "mean_reward": math.fsum(every) / len(every) if every else None,
        "pass_threshold": threshold,
        "pass_at_k": {
            str(k): pass_at_k(passes, k) if passes else None for k in range(1, samples_per_row + 1)
        },
        "share_all_min": share(lambda r: all(x <= lo for x in r.rewards)),
        "share_all_max": share(lambda r: all(x >= hi for x in r.rewards)),
        "share_zero_variance": share(lambda r: min(r.rewards) == max(r.rewards)),
        "mean_row_std": math.fsum(stds.values()) / count if count else None,
        "errors_by_flag": dict(flags.most_common()),
        "per_row": per_row,
    }
