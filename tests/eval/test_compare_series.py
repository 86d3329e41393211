"""``rftgrade compare BASE CKPT1 CKPT2 ...``: several checkpoints' evals (graded from given
replies through the library, as ``rftgrade eval --samples`` does) against one base eval,
through the real CLI and the library."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rftgrade.evaluate import compare_runs, compare_series, load_run

from .helpers import CONTAINS, compare_cli, graded, rft_row, write_data

pytest.importorskip("scipy")

ROWS = 20
SPRAY = "It is one of: " + " ".join(f"c{i}" for i in range(ROWS)) + ", surely one of those is the code."


def replies(right_rows: int, right_samples: int) -> list[list[str]]:
    """Two replies a row: the first ``right_samples`` right on the first ``right_rows`` rows."""
    return [
        [f"c{i}" if i < right_rows and n < right_samples else "no idea" for n in range(2)]
        for i in range(ROWS)
    ]


@pytest.fixture
def runs(tmp_path: Path) -> dict[str, Path]:
    """A base model and three checkpoints, in training order: a little better, much better,
    and one that learned the `like` grader (one reply naming every answer)."""
    data = write_data(tmp_path / "data.jsonl", [rft_row(f"c{i}", "right") for i in range(ROWS)])
    made = {
        "base": graded(tmp_path, "base", CONTAINS, data, replies(4, 1), "base"),
        "step100": graded(tmp_path, "step100", CONTAINS, data, replies(8, 1), "tuned"),
        "step200": graded(tmp_path, "step200", CONTAINS, data, replies(16, 2), "tuned"),
        "step300": graded(tmp_path, "step300", CONTAINS, data, [[SPRAY, SPRAY]] * ROWS, "tuned"),
    }
    return made


def test_checkpoints_get_simultaneous_intervals_and_the_hack_is_named_where_it_began(
    runs: dict[str, Path], tmp_path: Path
) -> None:
    out = tmp_path / "series"
    steps = [str(runs[s]) for s in ("step100", "step200", "step300")]
    done = compare_cli(str(runs["base"]), *steps, "--out", str(out), "--min-gain", "0")
    assert done.returncode == 0, done.stderr
    summary = json.loads((out / "series.json").read_text())
    assert summary["ci_level"] == 0.95 and summary["each_ci_level"] == pytest.approx(1 - 0.05 / 3)
    by = {r["label"]: r for r in summary["candidates"]}
    assert list(by) == ["step100", "step200", "step300"]
    # step100 gained on 4 of 20 rows by half a reply each.
    assert by["step100"]["gain"] == pytest.approx(4 * 0.5 / ROWS)
    assert by["step200"]["gain"] == pytest.approx((4 * 0.5 + 12 * 1.0) / ROWS)
    assert by["step300"]["gain"] == pytest.approx((4 * 0.5 + 16 * 1.0) / ROWS)
    # The hack scores highest, and is flagged there first; the best clean checkpoint is named too.
    assert summary["highest_gain"] == "step300" and summary["highest_gain_unflagged"] == "step200"
    assert summary["first_flagged"]["same_reply_across_rows"] == "step300"
    assert by["step200"]["flags"] == [] and "same_reply_across_rows" in by["step300"]["flags"]
    assert summary["shown_better"] == ["step200", "step300"] and summary["shown_worse"] == []
    # step100's interval lies above 0, but 4 rows moving is too few for the sign-flip test.
    assert by["step100"]["ci"][0] > 0 and by["step100"]["verdict"] == "no clear change"
    assert by["step100"]["p_adjusted"] > 0.05
    assert (
        "but the permutation test does not reject no change" in (out / "1-step100" / "summary.md").read_text()
    )
    for r in summary["candidates"]:
        assert r["p_adjusted"] == pytest.approx(min(1.0, 3 * r["p_value"]))
    # Each checkpoint's own report, at the widened level, beside the series.
    own = json.loads((out / "3-step300" / "compare.json").read_text())
    assert own["ci_level"] == pytest.approx(summary["each_ci_level"]) and own["ci"] == by["step300"]["ci"]
    assert by["step300"]["report"] == "3-step300/compare.json"
    text = (out / "summary.md").read_text()
    assert "[step200](2-step200/summary.md)" in text
    assert "Highest gain: **step300**" in text and "Highest gain without a flag: step200" in text
    assert "`same_reply_across_rows` flagged on step300 only" in text
    assert "shown above --min-gain +0.000: " in done.stderr and "step200" in done.stderr
    assert "3 runs against base" in done.stdout


def test_looking_at_three_checkpoints_widens_each_interval(runs: dict[str, Path]) -> None:
    base = load_run(runs["base"])
    alone = compare_runs(base, load_run(runs["step100"]))
    series = compare_series(base, [runs["step100"], runs["step200"], runs["step300"]])
    together = series.summary["candidates"][0]
    assert together["label"] == "step100" and together["gain"] == alone["gain"]
    (low, high), (alone_low, alone_high) = together["ci"], alone["ci"]
    # The resampled means are discrete here (steps of 0.025), so one end may stay put.
    assert low <= alone_low and high >= alone_high and high - low > alone_high - alone_low
    assert series.reports[0]["ci_level"] == pytest.approx(1 - 0.05 / 3)


def test_no_checkpoint_shown_better_fails_the_gate(runs: dict[str, Path], tmp_path: Path) -> None:
    again = graded(
        tmp_path, "again", CONTAINS, tmp_path / "data.jsonl", replies(4, 1), "tuned"
    )  # the base model's own replies: no change
    done = compare_cli(str(runs["base"]), str(again), str(runs["base"]), "--min-gain", "0")
    assert done.returncode == 1, done.stdout
    assert "None is shown better than base" in done.stdout
    assert "gate failed: no run's gain is shown above --min-gain +0.000" in done.stderr.replace("\n", " ")


def test_directories_named_alike_are_told_apart_by_their_paths(tmp_path: Path) -> None:
    from rftgrade.evaluate._compare_series import _labels

    paths = [tmp_path / "a" / "eval", tmp_path / "b" / "eval", tmp_path / "step9"]
    assert _labels(paths) == [str(paths[0]), str(paths[1]), "step9"]


def test_a_mistyped_checkpoint_is_named_before_any_work(runs: dict[str, Path], tmp_path: Path) -> None:
    missing = tmp_path / "step400"
    done = compare_cli(str(runs["base"]), str(runs["step100"]), str(missing))
    assert done.returncode == 2
    assert f"no eval.json in {missing}" in done.stderr.replace("\n", "")
    assert "runs against" not in done.stdout  # refused before the first comparison was shown
