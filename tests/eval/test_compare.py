"""``rftgrade compare``: two real evals (the real CLI, the real ``openai`` client, a
deterministic model on 127.0.0.1), compared by the real CLI; and the statistics and
hack checks on evals graded from samples files through the library."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from rftgrade.evaluate import compare_runs, load_run
from rftgrade.testing.fake_model import FakeModelServer

from .helpers import CONTAINS, GRADER, compare_cli, graded, rft_row, write_data
from .helpers import run_eval as eval_cli

pytest.importorskip("scipy")


def test_a_tuned_model_is_shown_better_and_the_gate_holds_both_ways(
    server: FakeModelServer, tmp_path: Path
) -> None:
    # 12 rows: 8 the tuned model learned (wrong before), 2 both get right, 2 both get half right.
    modes = ["model:tuned"] * 8 + ["right"] * 2 + ["alternate"] * 2
    data = write_data(tmp_path / "data.jsonl", [rft_row(f"c{i}", m) for i, m in enumerate(modes)])
    base, tuned = tmp_path / "base", tmp_path / "tuned"
    for out, model in ((base, "base-model"), (tuned, "tuned")):
        done = eval_cli(
            tmp_path, GRADER, data, out, "-n", "4", "--base-url", server.base_url, "--model", model
        )
        assert done.returncode == 0, done.stderr
    # Every row's prompt went out the same way for both models (the hash ignores the model).
    assert {json.dumps(b["messages"]) for b in server.bodies} == {
        json.dumps(json.loads(line)["messages"]) for line in data.read_text().splitlines()
    }

    done = compare_cli(str(base), str(tuned), "--out", str(tmp_path / "cmp"), "--min-gain", "0")
    assert done.returncode == 0, done.stderr
    assert "tuned scores higher than base-model" in done.stdout
    report = json.loads((tmp_path / "cmp" / "compare.json").read_text())
    assert report["verdict"] == "better" and report["rows_compared"] == 12
    assert report["gain"] == pytest.approx(8 / 12)
    assert (report["rows_improved"], report["rows_regressed"], report["rows_unchanged"]) == (8, 0, 4)
    low, high = report["ci"]
    assert 0 < low < 8 / 12 < high <= 1
    # 8 rows moved by +1, 4 by 0: the sign flips of the 8 give 2^8 equally likely means,
    # of which 2 are as extreme (all +, all -): the test is exact with 9999 resamples.
    assert report["p_value"] == pytest.approx(2 / 256)
    assert report["a"]["pass_at_k"]["1"] == pytest.approx((2 + 2 * 0.5) / 12)
    assert report["b"]["pass_at_k"]["1"] == pytest.approx((10 + 2 * 0.5) / 12)
    assert [r["row"] for r in report["top_gains"]] == [7, 6, 5, 4, 3]
    assert report["top_gains"][0]["b_reply"] == "c7" and report["top_gains"][0]["a_reply"] == "wrong"
    assert report["top_losses"] == [] and report["warnings"] == [] and report["rows_left_out"] == []
    assert not any(c["flagged"] for c in report["checks"])
    summary = (tmp_path / "cmp" / "summary.md").read_text()
    assert (
        "**tuned scores higher than base-model**" in summary
        and "| pass@1 | 0.250 | 0.917 | +0.667 |" in summary
    )

    # The other way round it is worse, and the gate fails with the interval's lower end.
    worse = compare_cli(str(tuned), str(base), "--min-gain", "0")
    assert worse.returncode == 1
    assert "base-model scores lower than tuned" in worse.stdout
    assert "gate failed" in worse.stderr and "is not shown above --min-gain +0.000" in worse.stderr


def test_the_same_model_twice_is_no_clear_change(server: FakeModelServer, tmp_path: Path) -> None:
    rows = [rft_row(f"c{i}", "alternate" if i % 2 else "right") for i in range(6)]
    data = write_data(tmp_path / "data.jsonl", rows)
    first, second = tmp_path / "first", tmp_path / "second"
    for out in (first, second):
        assert eval_cli(tmp_path, GRADER, data, out, "-n", "2", "--base-url", server.base_url).returncode == 0
    done = compare_cli(str(first), str(second), "--min-gain", "0")
    assert done.returncode == 1, done.stdout  # no gain shown: the gate fails
    assert "No clear change from base-model to base-model" in done.stdout
    assert "both runs name the model 'base-model'" in done.stdout


def test_a_reply_that_scores_everywhere_is_flagged_as_a_likely_hack(tmp_path: Path) -> None:
    rows = [rft_row(f"c{i}", "right") for i in range(10)]
    data = write_data(tmp_path / "data.jsonl", rows)
    base = graded(tmp_path, "base", CONTAINS, data, [[f"c{i}", "no idea"] for i in range(10)], "base")
    # The tuned policy learned the grader: `like` passes any reply that holds the answer.
    spray = "It is one of: " + " ".join(f"c{i}" for i in range(10)) + ", surely one of those is the code."
    tuned = graded(tmp_path, "tuned", CONTAINS, data, [[spray, spray] for _ in range(10)], "tuned")
    report = compare_runs(load_run(base), load_run(tuned))
    assert report["verdict"] == "better" and report["gain"] == pytest.approx(0.5)
    flagged = {c["check"]: c for c in report["checks"] if c["flagged"]}
    assert set(flagged) == {"reply_length", "same_reply_across_rows", "rows_with_one_reply"}
    assert (
        flagged["same_reply_across_rows"]["reply"] == spray and flagged["same_reply_across_rows"]["b"] == 1.0
    )
    assert (
        "one reply is given in 10 of 10 rows (mean reward 1.000)"
        in flagged["same_reply_across_rows"]["message"]
    )
    assert flagged["reply_length"]["b"] == len(spray)
    assert flagged["rows_with_one_reply"]["a"] == 0.0 and flagged["rows_with_one_reply"]["b"] == 1.0


def test_truncation_and_a_growing_error_flag_are_flagged(tmp_path: Path) -> None:
    rows = [rft_row(f"c{i}", "right") for i in range(6)]
    data = write_data(tmp_path / "data.jsonl", rows)
    json_grader = {**GRADER, "input": "{{ sample.output_json.answer }}"}

    def reply(text: str, finish: str) -> dict[str, Any]:
        message = {"role": "assistant", "content": text}
        return {"output_text": text, "choices": [{"index": 0, "message": message, "finish_reason": finish}]}

    base_rows = [
        [reply(json.dumps({"answer": f"c{i}"}), "stop"), reply('{"answer": "x"}', "stop")] for i in range(6)
    ]
    tuned_rows = [
        [reply(json.dumps({"answer": f"c{i}"}), "stop"), reply('{"answer": "c', "length")] for i in range(6)
    ]
    base = graded(tmp_path, "base", json_grader, data, base_rows, "base")
    tuned = graded(tmp_path, "tuned", json_grader, data, tuned_rows, "tuned")
    report = compare_runs(load_run(base), load_run(tuned))
    assert report["gain"] == 0.0 and report["verdict"] == "no clear change" and report["p_value"] == 1.0
    assert report["ci"] == [0.0, 0.0]
    checks = {c["check"]: c for c in report["checks"]}
    assert checks["cut_at_length_limit"]["flagged"] and checks["cut_at_length_limit"]["b"] == 0.5
    assert checks["grader_errors"]["flagged"]
    assert "`sample_parse_error` on 50% of samples (base 0%)" in checks["grader_errors"]["message"]


def test_rows_whose_prompt_changed_are_left_out(server: FakeModelServer, tmp_path: Path) -> None:
    rows = [rft_row(f"c{i}", "right") for i in range(5)]
    data = write_data(tmp_path / "data.jsonl", rows)
    edited = [dict(r) for r in rows]
    edited[2] = rft_row("c2", "right")
    edited[2]["messages"][0]["content"] += " Think hard."
    changed = write_data(tmp_path / "changed.jsonl", edited)
    for out, path, model in ((tmp_path / "a", data, "base-model"), (tmp_path / "b", changed, "tuned")):
        done = eval_cli(
            tmp_path, GRADER, path, out, "-n", "1", "--base-url", server.base_url, "--model", model
        )
        assert done.returncode == 0, done.stderr
    report = compare_runs(load_run(tmp_path / "a"), load_run(tmp_path / "b"))
    assert report["rows_left_out"] == [{"row": 2, "why": "its prompt differs between the runs"}]
    assert report["rows_compared"] == 4
    assert any("the dataset files differ" in w for w in report["warnings"])


def test_runs_that_cannot_be_compared_are_refused_with_the_fix(tmp_path: Path) -> None:
    rows = [rft_row(f"c{i}", "right") for i in range(3)]
    data = write_data(tmp_path / "data.jsonl", rows)
    replies = [[f"c{i}"] for i in range(3)]
    base = graded(tmp_path, "base", GRADER, data, replies, "base")
    other = graded(tmp_path, "other", CONTAINS, data, replies, "tuned")
    done = compare_cli(str(base), str(other))
    assert done.returncode == 2
    assert "were graded by different graders" in done.stderr
    assert f"--samples {base / 'samples.jsonl'}" in done.stderr  # the regrade that makes them comparable
    empty = tmp_path / "empty"
    empty.mkdir()
    done = compare_cli(str(base), str(empty))
    assert done.returncode == 2 and f"no eval.json in {empty}" in done.stderr.replace("\n", "")


def test_a_big_eval_gets_fewer_permutation_draws_never_under_999() -> None:
    from rftgrade.evaluate._compare import permutation_resamples

    assert permutation_resamples(12, 9999) == 9999
    assert permutation_resamples(2000, 9999) == 9999
    assert permutation_resamples(20000, 9999) == 1000
    assert permutation_resamples(10**7, 9999) == 999
    assert permutation_resamples(12, 499) == 499  # what the user asked for, when less


def test_few_rows_moving_is_no_clear_change_even_when_the_interval_excludes_zero(tmp_path: Path) -> None:
    rows = [rft_row(f"c{i}", "right") for i in range(20)]
    data = write_data(tmp_path / "data.jsonl", rows)
    base = graded(tmp_path, "base", GRADER, data, [["no idea", "no idea"]] * 20, "base")
    # 4 rows of 20 gain half a point: a bootstrap interval above 0, a sign-flip p near 1/8.
    better = [[f"c{i}" if i < 4 else "no idea", "no idea"] for i in range(20)]
    tuned = graded(tmp_path, "tuned", GRADER, data, better, "tuned")
    report = compare_runs(load_run(base), load_run(tuned))
    assert report["ci"][0] > 0 and report["p_value"] > 0.05
    assert report["verdict"] == "no clear change"
    done = compare_cli(str(base), str(tuned), "--min-gain", "0")
    assert done.returncode == 1
    assert "but the permutation test does not reject no change" in done.stdout
    assert "the permutation test does not reject no change (p = " in done.stderr.replace("\n", " ")
    # "No worse than -0.05" needs the interval alone, and it holds.
    assert compare_cli(str(base), str(tuned), "--min-gain", "-0.05").returncode == 0
