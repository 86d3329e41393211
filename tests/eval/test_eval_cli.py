"""``rftgrade eval`` end to end: the real CLI, the real ``openai`` client, and a
deterministic chat model on 127.0.0.1 (:class:`rftgrade.testing.fake_model.FakeModelServer`)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from rftgrade.testing.fake_model import FakeModelServer

from ..conftest import require_or_skip
from .helpers import (
    GRADER,
    MODES,
    ROOT,
    assert_expected_stats,
    closed_port,
    lines,
    load,
    rft_row,
    run_eval,
    write_data,
)


def test_eval_scores_each_behaviour_then_resumes(server: FakeModelServer, tmp_path: Path) -> None:
    rows = [rft_row(f"c{i}", mode) for i, mode in enumerate(MODES)]
    data = write_data(tmp_path / "data.jsonl", rows, bad_line_after=7)
    out = tmp_path / "out"
    done = run_eval(tmp_path, GRADER, data, out, "-n", "4", "--base-url", server.base_url, "--timeout", "1")
    assert done.returncode == 0, done.stderr
    assert "line 8: not valid JSON" in done.stderr  # reported, and the run went on
    report = load(out)
    assert_expected_stats(report)
    assert [x["line"] for x in report["unreadable_lines"]] == [8, 9]
    assert "line 9: no `messages` to prompt the model with" in done.stderr
    # 500s and 429s were retried, the hung request timed out once and was retried.
    assert report["timing"]["retries"] == 2 + 3 + 1
    assert server.requests == 28 + 6
    assert server.max_in_flight > 4  # the default --concurrency 32 sent them side by side
    assert report["grader_form"] == "grader" and report["model"] == "base-model"

    records = lines(out)
    assert len(records) == 28 and sorted((r["row"], r["n"]) for r in records) == [
        (i, n) for i in range(7) for n in range(4)
    ]
    first = records[0]
    assert set(first) >= {"row", "n", "sample", "reward", "errors"}
    assert (
        first["sample"]["output_text"] == "c0" and first["sample"]["choices"][0]["message"]["content"] == "c0"
    )
    assert first["reward"] == 1.0 and first["errors"] == []

    summary = (out / "summary.md").read_text()
    assert "1 of 7 rows (14%) give GRPO a learning signal" in summary
    assert "5 rows are always solved" in summary and "1 row is never solved" in summary

    # A run with the same --out asks the model nothing new.
    before = server.requests
    again = run_eval(tmp_path, GRADER, data, out, "-n", "4", "--base-url", server.base_url, "--timeout", "1")
    assert again.returncode == 0, again.stderr
    assert server.requests == before
    assert load(out)["samples"]["reused"] == 28
    assert_expected_stats(load(out))

    # A crash after 10 graded samples, mid-write of the 11th: only the 18 others are asked for.
    kept = (out / "samples.jsonl").read_text().splitlines()[:10]
    (out / "samples.jsonl").write_text("\n".join(kept) + '\n{"row": 2, "n": 2, "sam')
    before = server.requests
    resumed = run_eval(
        tmp_path, GRADER, data, out, "-n", "4", "--base-url", server.base_url, "--timeout", "1"
    )
    assert resumed.returncode == 0, resumed.stderr
    assert server.requests - before == 18
    report = load(out)
    assert report["samples"]["reused"] == 10 and report["samples"]["graded_now"] == 18
    assert_expected_stats(report)
    assert len(lines(out)) == 28

    # Two more samples per row: the first four are kept, only the new ones are asked for.
    before = server.requests
    more = run_eval(tmp_path, GRADER, data, out, "-n", "6", "--base-url", server.base_url, "--timeout", "1")
    assert more.returncode == 0, more.stderr
    assert server.requests - before == 14
    assert load(out)["samples_per_row"] == 6
    assert list(load(out)["pass_at_k"]) == ["1", "2", "3", "4", "5", "6"]
    # And back to four: nothing asked, the figures are the first four's, the other two stay on disk.
    before = server.requests
    fewer = run_eval(tmp_path, GRADER, data, out, "-n", "4", "--base-url", server.base_url, "--timeout", "1")
    assert fewer.returncode == 0, fewer.stderr
    assert server.requests == before and len(lines(out)) == 42
    assert_expected_stats(load(out))

    html = (out / "report.html").read_text()
    # Self-contained: no external scripts, styles, images or fonts (SVG's XML namespaces are not fetched).
    assert not re.search(r"""(src|href|url)\s*[=(]\s*["']?https?:""", html)
    for marker in ('id="plot-histogram"', 'id="plot-rows"', 'id="plot-pass_at_k"', 'id="no-signal"', "<svg"):
        assert marker.replace('"', "'") in html or marker in html, marker


def test_report_renders_in_headless_chromium(server: FakeModelServer, tmp_path: Path) -> None:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    require_or_skip(chromium is not None, "chromium")
    assert chromium is not None
    rows = [rft_row(f"r{i}", mode) for i, mode in enumerate(["right", "wrong", "alternate"] * 3)]
    out = tmp_path / "out"
    done = run_eval(
        tmp_path,
        GRADER,
        write_data(tmp_path / "d.jsonl", rows),
        out,
        "-n",
        "4",
        "--base-url",
        server.base_url,
    )
    assert done.returncode == 0, done.stderr
    page = (out / "report.html").as_uri()
    common = [chromium, "--headless", "--no-sandbox", "--disable-gpu"]
    dom = subprocess.run([*common, "--dump-dom", page], capture_output=True, text=True, timeout=120).stdout
    for marker in ("plot-histogram", "plot-rows", "plot-pass_at_k", "no-signal", "<svg", "learning signal"):
        assert marker in dom, marker
    shot = tmp_path / "report.png"
    subprocess.run(
        [*common, "--window-size=1200,1600", f"--screenshot={shot}", page], capture_output=True, timeout=120
    )
    assert shot.is_file() and shot.stat().st_size > 30_000  # a page with three plots, not a blank one


def test_samples_file_is_graded_without_sampling(tmp_path: Path) -> None:
    rows = [rft_row("x1", "right"), rft_row("x2", "right")]
    data = write_data(tmp_path / "d.jsonl", rows)
    made = tmp_path / "made_elsewhere.jsonl"
    made.write_text(
        "\n".join(
            json.dumps(x)
            for x in [
                {"row": 0, "n": 0, "sample": "x1"},
                {"row": 0, "n": 1, "sample": {"output_text": "nope"}},
                {
                    "row": 1,
                    "n": 0,
                    "sample": {"choices": [{"message": {"role": "assistant", "content": "x2"}}]},
                },
                {
                    "row": 1,
                    "sample": "x2",
                    "reward": 0.0,
                },  # `n` numbered in order; a stale reward is regraded
            ]
        )
        + "\n"
    )
    out = tmp_path / "out"
    nowhere = f"http://127.0.0.1:{closed_port()}/v1"  # any request would fail the run
    done = run_eval(tmp_path, GRADER, data, out, "-n", "2", "--samples", str(made), "--base-url", nowhere)
    assert done.returncode == 0, done.stderr
    report = load(out)
    assert [r["rewards"] for r in report["per_row"]] == [[1.0, 0.0], [1.0, 1.0]]
    assert report["pass_at_k"] == {"1": 0.75, "2": 1.0}
    assert report["timing"]["requests"] == 0 and report["samples_file"] == str(made)
    assert [(r["row"], r["n"], r["reward"]) for r in lines(out)] == [
        (0, 0, 1.0),
        (0, 1, 0.0),
        (1, 0, 1.0),
        (1, 1, 1.0),
    ]

    # A samples file that lacks a row's samples: that row is not sampled, the command fails.
    made.write_text(json.dumps({"row": 0, "n": 0, "sample": "x1"}) + "\n")
    partial = run_eval(tmp_path, GRADER, data, tmp_path / "out2", "-n", "1", "--samples", str(made))
    assert partial.returncode == 1
    assert load(tmp_path / "out2")["rows_not_sampled"] == [1]


PYTHON_GRADER = {
    "type": "python",
    "name": "json_or_tool",
    "pass_threshold": 0.5,
    "source": (
        "import json\n"
        "def grade(sample, item):\n"
        "    if sample['output_tools']:\n"
        "        got = json.loads(sample['output_tools'][0]['function']['arguments'])['answer']\n"
        "    else:\n"
        "        got = sample['output_json']['answer']\n"
        "    return 0.75 if got == item['reference_answer'] else 0.25\n"
    ),
}
TOOL = {"type": "function", "function": {"name": "submit", "parameters": {"type": "object"}}}


def test_tools_and_response_format_reach_the_model_and_the_grader(
    server: FakeModelServer, tmp_path: Path
) -> None:
    rows = [
        rft_row("j1", "right", response_format={"type": "json_object"}),
        rft_row("t1", "tool", tools=[TOOL]),
        rft_row("j2", "wrong", response_format={"type": "json_object"}),
    ]
    out = tmp_path / "out"
    args = ("-n", "2", "--base-url", server.base_url, "--sandbox", "process")
    done = run_eval(tmp_path, PYTHON_GRADER, write_data(tmp_path / "d.jsonl", rows), out, *args)
    assert done.returncode == 0, done.stderr
    report = load(out)
    assert report["errors_by_flag"] == {}
    assert [r["rewards"] for r in report["per_row"]] == [[0.75, 0.75], [0.75, 0.75], [0.25, 0.25]]
    # The grader's pass_threshold (0.5) decides what passes; no row reaches 0 or 1.
    assert report["pass_threshold"] == 0.5 and report["pass_at_k"]["1"] == 2 / 3
    assert (
        report["share_all_min"] == 0 and report["share_all_max"] == 0 and report["share_zero_variance"] == 1
    )
    first = lines(out)[0]["sample"]
    assert first["output_json"] == {"reasoning": "because j1", "answer": "j1"}
    assert lines(out)[2]["sample"]["output_tools"][0]["function"]["name"] == "submit"
    # --pass-threshold overrides the grader's: now nothing passes. Rewards are reused, not resampled.
    before = server.requests
    stricter = run_eval(tmp_path, PYTHON_GRADER, tmp_path / "d.jsonl", out, *args, "--pass-threshold", "0.9")
    assert stricter.returncode == 0, stricter.stderr
    assert server.requests == before and load(out)["pass_at_k"]["1"] == 0.0


def test_a_fine_tuning_job_file_is_read_as_one(server: FakeModelServer, tmp_path: Path) -> None:
    job_path = ROOT / "grader_examples" / "openai_rft_job" / "job.json"
    job = json.loads(job_path.read_text())
    rows = [
        {**rft_row("41", "right"), "answer": "41", "key_quantity": "41"},
        {**rft_row("42", "wrong"), "answer": "42", "key_quantity": "42"},
    ]
    out = tmp_path / "out"
    grader_json = job  # run_eval writes it to grader.json: the job body as the user holds it
    done = run_eval(
        tmp_path,
        grader_json,
        write_data(tmp_path / "d.jsonl", rows),
        out,
        "-n",
        "2",
        "--base-url",
        server.base_url,
    )
    assert done.returncode == 0, done.stderr
    assert "as a fine-tuning job" in done.stderr
    report = load(out)
    assert report["grader_form"] == "fine_tuning_job" and report["grader"]["type"] == "multi"
    assert report["job"]["model"] == "o4-mini-2025-04-16"
    assert report["job"]["hyperparameters"]["n_epochs"] == 2 and report["job"]["suffix"] == "math-rft"
    # The job's response_format went to the model, and its JSON reached the grader.
    assert all(b["response_format"]["type"] == "json_schema" for b in server.bodies)
    assert [r["rewards"] for r in report["per_row"]] == [[1.0, 1.0], [0.0, 0.0]]
    assert report["pass_at_k"] == {"1": 0.5, "2": 0.5} and report["errors_by_flag"] == {}
    assert "o4-mini-2025-04-16" in (out / "summary.md").read_text()


def test_the_migration_guide_command_runs_as_written(server: FakeModelServer, tmp_path: Path) -> None:
    """docs/migrating-from-openai.md, step 2, with the endpoint from OPENAI_BASE_URL as it says."""
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "OPENAI_BASE_URL": server.base_url,
        "OPENAI_API_KEY": "sk-x",
    }
    command = (
        "rftgrade eval grader_examples/openai_rft_job/job.json grader_examples/openai_rft_job/valid.jsonl "
        "--model base-model -n 4 --concurrency 8 --out eval-out"
    )
    assert command in (ROOT / "docs" / "migrating-from-openai.md").read_text().replace(" \\\n  ", " ")
    argv = command.split()[1:]
    argv = [str(ROOT / a) if a.startswith("grader_examples/") else a for a in argv]
    done = subprocess.run(
        [sys.executable, "-m", "rftgrade", *argv],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    report = load(tmp_path / "eval-out")
    assert report["rows"] == 2 and report["rows_scored"] == 2 and server.requests == 8
    assert report["grader_form"] == "fine_tuning_job" and report["base_url"].startswith(server.base_url)
    for name in ("samples.jsonl", "eval.json", "report.html", "summary.md"):
        assert (tmp_path / "eval-out" / name).is_file()
