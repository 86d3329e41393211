"""pass@k and the learning-signal shares, against brute-force definitions."""

from __future__ import annotations

import itertools
from fractions import Fraction

import pytest

from rftgrade.evaluate import pass_at_k, row_pass_at_k, summarize_rows
from rftgrade.evaluate._stats import RowRewards


@pytest.mark.parametrize("n", [1, 2, 4, 7])
def test_row_pass_at_k_is_the_share_of_k_subsets_with_a_pass(n: int) -> None:
    for c in range(n + 1):
        outcomes = [True] * c + [False] * (n - c)
        for k in range(1, n + 1):
            subsets = list(itertools.combinations(range(n), k))
            brute = Fraction(sum(any(outcomes[i] for i in s) for s in subsets), len(subsets))
            assert row_pass_at_k(n, c, k) == brute, (n, c, k)


def test_pass_at_k_averages_rows_and_rejects_k_above_n() -> None:
    assert pass_at_k([(4, 4), (4, 0), (4, 2)], 2) == float((1 + 0 + Fraction(5, 6)) / 3)
    with pytest.raises(ValueError, match="k=5"):
        row_pass_at_k(4, 1, 5)


def test_shares_count_flat_rows_at_any_value_and_skip_unsampled_rows() -> None:
    rows = [
        RowRewards(0, 1, [1.0, 1.0, 1.0]),
        RowRewards(1, 2, [0.0, 0.0, 0.0]),
        RowRewards(2, 3, [0.1, 0.1, 0.1]),  # flat in between: no signal either
        RowRewards(3, 4, [0.0, 0.5, 1.0]),
        RowRewards(4, 5, [1.0], missing=2, reasons=["down"]),
    ]
    report = summarize_rows(rows, samples_per_row=3, threshold=1.0, score_range=(0.0, 1.0))
    assert report["rows_scored"] == 4
    assert report["share_all_max"] == 0.25 and report["share_all_min"] == 0.25
    assert report["share_zero_variance"] == 0.75
    assert report["pass_at_k"]["1"] == float((1 + 0 + 0 + Fraction(1, 3)) / 4)
    assert report["mean_row_std"] == pytest.approx((2 / 3) ** 0.5 * 0.5 / 4)
    unsampled = report["per_row"][4]
    assert unsampled["sampled"] is False and unsampled["mean"] is None and unsampled["missing_samples"] == 2
