"""The statistics against hand-checked small cases, and reproducible bootstrap intervals."""

from __future__ import annotations

import numpy as np
import pytest

from rftgrade.quality._stats import agreement, bootstrap_ci, calibration, nearest_label, stability


def test_perfect_agreement() -> None:
    h = np.array([1, 2, 3, 4, 5, 1, 2, 3, 4, 5], dtype=float)
    a = agreement(h.copy(), h, labels=[1, 2, 3, 4, 5], threshold=3, n_boot=200)
    for key in (
        "pearson",
        "spearman",
        "kendall_tau_b",
        "cohen_kappa_quadratic",
        "krippendorff_alpha",
        "accuracy",
        "pass_agreement",
        "roc_auc",
    ):
        assert a[key] == pytest.approx(1.0), key
    assert a["mae"] == 0.0 and a["mean_signed_error"] == 0.0
    assert np.trace(np.array(a["confusion_matrix"])) == 10


def test_hand_checked_small_case() -> None:
    # human 1,2,3,4 ; judge 2,2,3,5 -> MAE = (1+0+0+1)/4 = 0.5, signed = +0.5 (lenient)
    h = np.array([1, 2, 3, 4], dtype=float)
    j = np.array([2, 2, 3, 5], dtype=float)
    a = agreement(j, h, labels=[1, 2, 3, 4, 5], threshold=3, n_boot=100)
    assert a["mae"] == 0.5 and a["mean_signed_error"] == 0.5 and a["leniency"] == "lenient"
    assert a["accuracy"] == 0.5
    # Kendall tau-b by hand: pairs (6): concordant 5, discordant 0, judge ties 1 (the 2,2 pair)
    # tau_b = 5 / sqrt((5+0+1) * (5+0+0)) = 5/sqrt(30)
    assert a["kendall_tau_b"] == pytest.approx(5 / np.sqrt(30))
    # Quadratic kappa: observed weighted disagreement vs expected, checked against the formula.
    cats = [1, 2, 3, 4, 5]
    o = np.zeros((5, 5))
    for x, y in zip(h, j, strict=True):
        o[cats.index(x), cats.index(y)] += 1
    w = np.array([[(r - c) ** 2 / 16 for c in range(5)] for r in range(5)])
    e = np.outer(o.sum(1), o.sum(0)) / o.sum()
    assert a["cohen_kappa_quadratic"] == pytest.approx(1 - (w * o).sum() / (w * e).sum())


def test_bootstrap_is_seeded_and_reproducible() -> None:
    rng = np.random.default_rng(1)
    h = rng.integers(1, 6, 40).astype(float)
    j = h + rng.normal(0, 1, 40)

    def mae(a: np.ndarray, b: np.ndarray) -> float:
        return float(np.mean(np.abs(a - b)))

    first = bootstrap_ci(mae, j, h, n=300, seed=5)
    assert first == bootstrap_ci(mae, j, h, n=300, seed=5)
    assert first != bootstrap_ci(mae, j, h, n=300, seed=6)
    assert first[0] is not None and first[1] is not None and first[0] < mae(j, h) < first[1]


def test_nearest_label() -> None:
    assert nearest_label(np.array([1.4, 1.6, 4.9, 0.0]), [1, 2, 3, 4, 5]).tolist() == [1, 2, 5, 1]


def test_calibration_perfect_and_bad() -> None:
    y = np.array([0, 0, 1, 1] * 5, dtype=float)
    good = calibration(y.copy(), y, bins=4)
    assert good["ece"] == pytest.approx(0.0) and good["brier"] == pytest.approx(0.0)
    bad = calibration(1 - y, y, bins=4)
    assert bad["ece"] == pytest.approx(1.0) and bad["brier"] == pytest.approx(1.0)


def test_stability_flip_rate() -> None:
    # item 0: always passes; item 1: pass, fail, pass -> P(two draws differ) = 1 - (2*1 + 1*0)/(3*2) = 2/3
    runs = np.array([[5, 5, 5], [5, 1, 5]], dtype=float)
    s = stability(runs, threshold=3)
    assert s["flip_rate"] == pytest.approx((0 + 2 / 3) / 2)
    assert s["per_item_sd_median"] == pytest.approx(np.median([0, np.std([5, 1, 5])]))
