"""The summary of ``rftgrade grade`` gives what the statistics module gives, from one sort."""

from __future__ import annotations

import math
import statistics
from array import array

from hypothesis import given
from hypothesis import strategies as st

from rftgrade._gradefile import FileSummary
from rftgrade.cli._io import _histogram, summarize

rewards = st.lists(st.floats(min_value=-10, max_value=10, allow_nan=False), min_size=1, max_size=400)


def _naive_histogram(data: list[float], bins: int = 10) -> list[int]:
    lo, hi = min(data), max(data)
    width = (hi - lo) / bins
    counts = [0] * bins
    for r in data:
        counts[min(int((r - lo) / width), bins - 1)] += 1
    return counts


@given(rewards)
def test_summary_figures_match_the_statistics_module(data: list[float]) -> None:
    graded = FileSummary(rows=len(data), rewards=array("d", data))
    out = summarize(graded)
    quartiles = statistics.quantiles(data, n=4, method="inclusive") if len(data) > 1 else [data[0]] * 3
    assert [out["p25"], out["median"], out["p75"]] == quartiles
    assert (out["min"], out["max"]) == (min(data), max(data))
    assert math.isclose(out["mean_reward"], statistics.fmean(data), rel_tol=1e-9, abs_tol=1e-12)
    assert math.isclose(out["stdev"], statistics.pstdev(data), rel_tol=1e-9, abs_tol=1e-9)


@given(rewards)
def test_the_histogram_counts_as_a_loop_over_every_reward_does(data: list[float]) -> None:
    hist = _histogram(sorted(data))
    if min(data) == max(data):
        assert hist == [(f"{data[0]:.3g}", len(data))]
    else:
        assert [count for _, count in hist] == _naive_histogram(data)
