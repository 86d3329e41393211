"""``rftgrade eval`` of a reasoning model behind an endpoint without a reasoning parser:
its replies hold ``<think>...</think>``, which OpenAI's grader never saw."""

from __future__ import annotations

from pathlib import Path

import pytest

from rftgrade.testing.fake_model import FakeModelServer

from .helpers import GRADER, lines, load, rft_row, run_eval, write_data


def test_the_final_answer_is_graded_and_cut_reasoning_is_named(
    server: FakeModelServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = [rft_row("a1", "think"), rft_row("a2", "think-cut"), rft_row("a3", "right")]
    data = write_data(tmp_path / "data.jsonl", rows)
    out = tmp_path / "out"
    done = run_eval(tmp_path, GRADER, data, out, "-n", "2", "--base-url", server.base_url)
    assert done.returncode == 0, done.stderr
    by_row = {r["row"]: r for r in load(out)["per_row"]}
    assert by_row[0]["rewards"] == [1.0, 1.0]  # the answer after </think> is the reference
    assert by_row[1]["rewards"] == [0.0, 0.0]  # no answer at all
    assert by_row[2]["rewards"] == [1.0, 1.0]
    report = load(out)
    assert report["reasoning"] == {"mode": "strip", "with_reasoning": 4, "ended_in_reasoning": 2}
    record = next(r for r in lines(out) if r["row"] == 0)
    # The grader's sample is the answer; the reply as the endpoint gave it stays in choices.
    assert record["sample"]["output_text"] == "a1"
    assert record["sample"]["choices"][0]["message"]["content"].startswith("<think>")
    summary = (out / "summary.md").read_text()
    assert "2 samples ended inside the model's reasoning" in summary and "--max-tokens" in summary

    # The same samples cannot be regraded another way from the same --out: they were cut.
    again = run_eval(
        tmp_path, GRADER, data, out, "-n", "2", "--base-url", server.base_url, "--reasoning", "keep"
    )
    assert again.returncode != 0 and "reasoning='strip'" in again.stderr

    # RFTGRADE_REASONING, which serve and the trainer adapters read, sets eval's mode too.
    monkeypatch.setenv("RFTGRADE_REASONING", "keep")
    kept = tmp_path / "kept"
    done = run_eval(tmp_path, GRADER, data, kept, "-n", "2", "--base-url", server.base_url)
    assert done.returncode == 0, done.stderr
    by_row = {r["row"]: r for r in load(kept)["per_row"]}
    assert by_row[0]["rewards"] == [0.0, 0.0]  # reasoning and answer together are not the reference
    assert "graded with it (--reasoning keep)" in (kept / "summary.md").read_text()

    assert load(kept)["reasoning"]["mode"] == "keep"

    bad = run_eval(tmp_path, GRADER, data, tmp_path / "bad", "--reasoning", "drop")
    assert (
        bad.returncode == 2
        and "--reasoning (or RFTGRADE_REASONING) is 'drop'; use strip or keep" in bad.stderr
    )
    monkeypatch.setenv("RFTGRADE_REASONING", "off")
    bad = run_eval(tmp_path, GRADER, data, tmp_path / "bad")
    assert bad.returncode == 2 and "is 'off'; use strip or keep" in bad.stderr
