"""Did training help? Two ``rftgrade eval`` runs of one dataset and grader, row by row.

The unit is the dataset row: each row's mean reward in run A (the base model) and
run B (the tuned one) is a pair, and the gain is the mean of the pairs' differences,
with a paired bootstrap interval over rows (scipy's BCa) and a paired permutation
test (scipy), both seeded so a report is reproducible. Resampling rows, not
samples, keeps a row's samples together: they share a prompt, so they are not
independent draws (the clustered standard error of evals).

A higher reward is only good news if the grader still measures what it did, so
the comparison also reads the samples for the signs of a policy that learned the
grader rather than the task: replies much longer or shorter, more replies cut at
the length limit, a grader error flag that grew, one reply that scores on many
different prompts, rows whose samples all became the same text. Each is a flag to
read the rows behind it, not a verdict.

Runs graded by different graders are refused (their rewards do not compare);
everything else that differs (temperature, ``-n``, the dataset file) is a warning
in the report, and rows whose prompt changed are left out and listed.
"""

from __future__ import annotations

import json
import math
import warnings
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rftgrade._exceptions import DataError
from rftgrade.evaluate._compare_checks import EXCERPT, graded_text, sample_checks
from rftgrade.evaluate._data import Record, load_records
from rftgrade.evaluate._stats import RowRewards, summarize_rows

__all__ = ["EvalRun", "compare_runs", "load_run"]

_TOP = 5
_BATCH_VALUES = 2_000_000
"""Resampled values held at once (16 MB): unbatched, scipy holds every resample, 8 GB at 20,000 rows."""
_PERMUTATION_DRAWS = 20_000_000
"""Sign flips a permutation test may draw: scipy's draw is slow (~21 s for 20,000 rows x
9,999 resamples here), so a big eval gets fewer resamples (never under 999)."""


@dataclass
class EvalRun:
    """One eval's ``--out`` directory: its ``eval.json`` and its samples."""

    path: Path
    report: dict[str, Any]
    records: dict[tuple[int, int], Record]

    @property
    def label(self) -> str:
        return str(self.report.get("model") or self.path)


def load_run(path: Path) -> EvalRun:
    """Read an eval directory.

    Raises:
        DataError: ``path`` is not the ``--out`` of an ``rftgrade eval`` run.
    """
    report_path = path / "eval.json"
    if not report_path.is_file():
        raise DataError(
            f"no eval.json in {path}: pass the --out directory of an `rftgrade eval` run "
            "(run `rftgrade eval GRADER DATA --model M --out DIR` first)"
        )
    try:
        report = json.loads(report_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"{report_path} is not JSON ({exc}); run the eval again into {path}") from None
    if not isinstance(report, dict) or not isinstance(report.get("per_row"), list):
        raise DataError(f"{report_path} has no `per_row`: it is not an `rftgrade eval` report")
    records, _ = load_records(path / "samples.jsonl")
    return EvalRun(path, report, records)


def _grader_id(run: EvalRun) -> Any:
    grader = run.report.get("grader")
    return grader.get("id") if isinstance(grader, dict) else None


def _check_comparable(a: EvalRun, b: EvalRun) -> list[str]:
    """Refuse runs whose rewards do not compare; the other differences, as warnings."""
    if _grader_id(a) != _grader_id(b):
        name = (b.report.get("grader") or {}).get("name") or "grader"
        raise DataError(
            f"{a.path} and {b.path} were graded by different graders (ids {_grader_id(a)} and "
            f"{_grader_id(b)}): their rewards do not compare. Regrade one run's samples with the "
            f"other's grader, e.g. `rftgrade eval GRADER.json DATA --samples {a.path / 'samples.jsonl'} "
            f"--model {a.label} --out {a.path}-regraded` with {name}'s file, and compare that"
        )
    notes: list[str] = []
    for key in ("temperature", "max_tokens", "pass_threshold"):
        if a.report.get(key) != b.report.get(key):
            notes.append(
                f"`{key}` differs ({a.report.get(key)!r} in A, {b.report.get(key)!r} in B): "
                "the two models were not sampled or scored the same way"
            )
    for key in ("reasoning", "tool_calls"):
        ma, mb = ((r.report.get(key) or {}).get("mode") for r in (a, b))
        if ma != mb:
            notes.append(f"`--{key.replace('_', '-')}` differs ({ma} in A, {mb} in B)")
    if a.report.get("samples_per_row") != b.report.get("samples_per_row"):
        notes.append(
            f"A has {a.report.get('samples_per_row')} samples a row, B {b.report.get('samples_per_row')}: "
            "row means compare, pass@k only up to the smaller"
        )
    if a.report.get("model") and a.report.get("model") == b.report.get("model"):
        notes.append(f"both runs name the model {a.report['model']!r}: is B the tuned one?")
    da, db = a.report.get("dataset") or {}, b.report.get("dataset") or {}
    if da.get("sha256") and db.get("sha256") and da["sha256"] != db["sha256"]:
        notes.append(
            f"the dataset files differ ({da.get('path')} and {db.get('path')}): rows are matched by "
            "index, and a row whose prompt changed is left out"
        )
    return notes


def _prompts(run: EvalRun) -> dict[int, set[str]]:
    found: dict[int, set[str]] = defaultdict(set)
    for (row, _), record in run.records.items():
        if record.prompt:
            found[row].add(record.prompt)
    return found


def _same_request_settings(a: EvalRun, b: EvalRun) -> bool:
    # The prompt hash covers the whole request but the model: it tells two rows'
    # prompts apart only when both runs sent the same sampling settings.
    return all(a.report.get(k) == b.report.get(k) for k in ("temperature", "max_tokens"))


def _paired_rows(
    a: EvalRun, b: EvalRun
) -> tuple[list[tuple[dict[str, Any], dict[str, Any]]], list[dict[str, Any]]]:
    rows_a = {r["row"]: r for r in a.report["per_row"] if r.get("sampled")}
    rows_b = {r["row"]: r for r in b.report["per_row"] if r.get("sampled")}
    check_prompts = _same_request_settings(a, b)
    prompts_a, prompts_b = (_prompts(a), _prompts(b)) if check_prompts else ({}, {})
    pairs, left_out = [], []
    for row in sorted(set(rows_a) | set(rows_b)):
        if row not in rows_a or row not in rows_b:
            where = "A" if row not in rows_a else "B"
            left_out.append({"row": row, "why": f"not fully sampled in {where}"})
            continue
        pa, pb = prompts_a.get(row), prompts_b.get(row)
        if pa and pb and not pa & pb:
            left_out.append({"row": row, "why": "its prompt differs between the runs"})
            continue
        pairs.append((rows_a[row], rows_b[row]))
    return pairs, left_out


def _interval(deltas: np.ndarray, *, level: float, resamples: int, seed: int) -> tuple[float, float] | None:
    """Paired bootstrap interval of the mean gain over rows (BCa; percentile where BCa is degenerate)."""
    from scipy.stats import bootstrap

    if len(deltas) < 2:
        return None
    if np.all(deltas == deltas[0]):
        return float(deltas[0]), float(deltas[0])
    for method in ("BCa", "percentile"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # BCa's degenerate-sample warning: the fallback handles it
            ci = bootstrap(
                (deltas,),
                np.mean,
                confidence_level=level,
                n_resamples=resamples,
                method=method,
                rng=np.random.default_rng(seed),
                batch=max(1, _BATCH_VALUES // len(deltas)),
            ).confidence_interval
        if math.isfinite(ci.low) and math.isfinite(ci.high):
            return float(ci.low), float(ci.high)
    return None


def permutation_resamples(rows: int, wanted: int) -> int:
    """Resamples of the permutation test for ``rows`` pairs (see :data:`_PERMUTATION_DRAWS`)."""
    return min(wanted, max(999, _PERMUTATION_DRAWS // max(rows, 1)))


def _p_value(deltas: np.ndarray, *, resamples: int, seed: int) -> float | None:
    """Two-sided paired permutation test of no change: the rows' gains with random signs
    (scipy's one-sample ``samples`` permutation; exact for up to ~13 rows)."""
    from scipy.stats import permutation_test

    if len(deltas) < 2:
        return None
    if np.all(deltas == 0):
        return 1.0
    result = permutation_test(
        (deltas,),
        lambda x, axis: np.mean(x, axis=axis),
        permutation_type="samples",
        vectorized=True,
        n_resamples=resamples,
        alternative="two-sided",
        rng=np.random.default_rng(seed),
        batch=max(1, _BATCH_VALUES // len(deltas)),
    )
    return float(min(1.0, result.pvalue))


def _verdict(ci: tuple[float, float] | None, p: float | None, level: float) -> str:
    """*better* or *worse* only when the interval excludes 0 and the permutation test rejects
    no change at the same level: when few rows moved, a bootstrap interval is too narrow (4
    rows of 20 gaining, the rest equal, gives an interval above 0, while the exact sign-flip
    test's p cannot go below 2/2^4), and the verdict then says no clear change."""
    rejects = p is not None and p <= 1.0 - level
    if ci is not None and rejects and ci[0] > 0:
        return "better"
    if ci is not None and rejects and ci[1] < 0:
        return "worse"
    return "no clear change"


def _samples(run: EvalRun, rows: set[int]) -> list[Record]:
    return [
        r for (row, _), r in sorted(run.records.items()) if row in rows and r.sampled and r.reward is not None
    ]


def _best(records: list[Record], row: int, *, highest: bool) -> str | None:
    mine = [r for r in records if r.row == row]
    if not mine:
        return None
    pick = max(mine, key=lambda r: r.reward or 0.0) if highest else min(mine, key=lambda r: r.reward or 0.0)
    return graded_text(pick.sample)[:EXCERPT]


def compare_runs(
    a: EvalRun, b: EvalRun, *, level: float = 0.95, resamples: int = 9999, seed: int = 0
) -> dict[str, Any]:
    """``compare.json``: B (the tuned model) against A (the base), over the rows both scored.

    Raises:
        DataError: different graders, or no row scored in both runs.
    """
    notes = _check_comparable(a, b)
    pairs, left_out = _paired_rows(a, b)
    if not pairs:
        raise DataError(
            f"no row is scored in both {a.path} and {b.path}"
            + (f" ({left_out[0]['why']}, row {left_out[0]['row']}, ...)" if left_out else "")
            + ": run both evals on the same dataset"
        )
    a_means = np.array([float(ra["mean"]) for ra, _ in pairs])
    b_means = np.array([float(rb["mean"]) for _, rb in pairs])
    deltas = b_means - a_means
    gain = float(deltas.mean())
    ci = _interval(deltas, level=level, resamples=resamples, seed=seed)
    flips = permutation_resamples(len(deltas), resamples)
    p = _p_value(deltas, resamples=flips, seed=seed)
    verdict = _verdict(ci, p, level)
    rows = {ra["row"] for ra, _ in pairs}
    sa, sb = _samples(a, rows), _samples(b, rows)
    k_max = min(int(a.report.get("samples_per_row") or 1), int(b.report.get("samples_per_row") or 1))
    threshold_a = float(a.report.get("pass_threshold", 1.0))
    threshold_b = float(b.report.get("pass_threshold", 1.0))

    def side(run: EvalRun, index: int, threshold: float, means: np.ndarray) -> dict[str, Any]:
        # The eval's own statistics, over the compared rows only (pass@k up to the smaller -n).
        lo, hi = run.report.get("score_range") or (0.0, 1.0)
        stats = summarize_rows(
            [
                RowRewards(pair[index]["row"], pair[index].get("line") or 0, pair[index]["rewards"])
                for pair in pairs
            ],
            samples_per_row=k_max,
            threshold=threshold,
            score_range=(float(lo), float(hi)),
        )
        return {
            "dir": str(run.path),
            "model": run.report.get("model"),
            "samples_per_row": run.report.get("samples_per_row"),
            "mean_reward": float(means.mean()),
            "pass_at_k": stats["pass_at_k"],
            "share_zero_variance": stats["share_zero_variance"],
            "share_all_max": stats["share_all_max"],
        }

    order = np.argsort(deltas, kind="stable")
    per_row = [
        {
            "row": ra["row"],
            "line": ra.get("line"),
            "a_mean": float(ra["mean"]),
            "b_mean": float(rb["mean"]),
            "delta": float(d),
        }
        for (ra, rb), d in zip(pairs, deltas, strict=True)
    ]

    def top(indices: Any, *, gains: bool) -> list[dict[str, Any]]:
        chosen = []
        for i in indices:
            entry = per_row[int(i)]
            if (entry["delta"] <= 0) if gains else (entry["delta"] >= 0):
                break
            chosen.append(
                {
                    **entry,
                    "b_reply": _best(sb, entry["row"], highest=gains),
                    "a_reply": _best(sa, entry["row"], highest=not gains),
                }
            )
        return chosen

    return {
        "a": side(a, 0, threshold_a, a_means),
        "b": side(b, 1, threshold_b, b_means),
        "rows_compared": len(pairs),
        "rows_left_out": left_out,
        "gain": gain,
        "ci": list(ci) if ci is not None else None,
        "ci_level": level,
        "p_value": p,
        "verdict": verdict,
        "rows_improved": int(np.sum(deltas > 0)),
        "rows_regressed": int(np.sum(deltas < 0)),
        "rows_unchanged": int(np.sum(deltas == 0)),
        "checks": sample_checks(sa, sb, len(pairs)),
        "top_gains": top(order[::-1][:_TOP], gains=True),
        "top_losses": top(order[:_TOP], gains=False),
        "warnings": notes,
        "per_row": per_row,
        "method": {
            "unit": "dataset row (its samples' mean reward)",
            "interval": f"paired bootstrap over rows, scipy BCa, {resamples} resamples, seed {seed}",
            "test": f"paired permutation (sign flips) of the rows' gains, two-sided, {flips} resamples, seed {seed}",
        },
    }
