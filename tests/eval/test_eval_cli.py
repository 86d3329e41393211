"""``rftgrade eval`` end to end: the real CLI, the real ``openai`` client, and a
deterministic chat model on 127.0.0.1 (:class:`rftgrade.testing.fake_model.FakeModelServer`)."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest

from rftgrade.testing.fake_model import FakeModelServer

from ..conftest import require_or_skip

ROOT = Path(__file__).resolve().parents[2]
GRADER = {
    "type": "string_check",
    "name": "exact",
    "input": "{{ sample.output_text }}",
    "reference": "{{ item.reference_answer }}",
    "operation": "eq",
}
# One row per behaviour; n=4 samples each.
MODES = ["right", "wrong", "alternate", "slow:0.3", "500:2", "429:3", "hang:1"]


@pytest.fixture
def server() -> Iterator[FakeModelServer]:
    with FakeModelServer() as s:
        yield s


def rft_row(answer: str, mode: str, **extra: Any) -> dict[str, Any]:
    prompt = f"What is the code? answer={answer} mode={mode}"
    return {"messages": [{"role": "user", "content": prompt}], "reference_answer": answer, **extra}


def write_data(path: Path, rows: list[dict[str, Any]], bad_line_after: int | None = None) -> Path:
    lines = [json.dumps(r) for r in rows]
    if bad_line_after is not None:
        lines.insert(bad_line_after, '{"messages": [oops')
    path.write_text("\n".join(lines) + "\n")
    return path


def run_eval(
    tmp: Path, grader: dict[str, Any], data: Path, out: Path, *args: str
) -> subprocess.CompletedProcess[str]:
    grader_path = tmp / "grader.json"
    grader_path.write_text(json.dumps(grader))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OPENAI_API_KEY": "sk-test"}
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "rftgrade",
            "eval",
            str(grader_path),
            str(data),
            "--model",
            "base-model",
            "--out",
            str(out),
            "--retry-backoff",
            "0.02",
            *args,
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=240,
    )


def load(out: Path) -> dict[str, Any]:
    return json.loads((out / "eval.json").read_text())


def lines(out: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in (out / "samples.jsonl").read_text().splitlines() if x.strip()]


def mean(values: list[Fraction]) -> float:
    return float(sum(values, Fraction(0)) / len(values))


def assert_expected_stats(report: dict[str, Any]) -> None:
    """Rows: five always right (right, slow, 500s, 429s, a timeout), one always wrong,
    one right every other call; 4 samples each."""
    assert report["rows"] == 7 and report["rows_scored"] == 7 and report["samples_per_row"] == 4
    half = [Fraction(1, 2), Fraction(5, 6), Fraction(1), Fraction(1)]  # 2 of 4 pass: 1 - C(2,k)/C(4,k)
    for k in range(1, 5):
        assert report["pass_at_k"][str(k)] == mean([Fraction(1)] * 5 + [Fraction(0), half[k - 1]])
    assert report["pass_at_k"]["2"] == float(Fraction(5 + 5 / Fraction(6), 7))
    assert report["share_all_max"] == 5 / 7
    assert report["share_all_min"] == 1 / 7
    assert report["share_zero_variance"] == 6 / 7
    assert report["mean_row_std"] == pytest.approx(0.5 / 7, abs=1e-15)
    assert report["mean_reward"] == 22 / 28
    assert report["errors_by_flag"] == {}
    by_row = {r["row"]: r for r in report["per_row"]}
    assert by_row[2]["rewards"].count(1.0) == 2 and by_row[2]["std"] == 0.5
    assert by_row[1] == {"row": 1, "line": 2, "sampled": True, "mean": 0.0, "std": 0.0, "rewards": [0.0] * 4}


def test_eval_scores_each_behaviour_then_resumes(server: FakeModelServer, tmp_path: Path) -> None:
    rows = [rft_row(f"c{i}", mode) for i, mode in enumerate(MODES)]
    data = write_data(tmp_path / "data.jsonl", rows, bad_line_after=7)
    out = tmp_path / "out"
    done = run_eval(tmp_path, GRADER, data, out, "-n", "4", "--base-url", server.base_url, "--timeout", "1")
    assert done.returncode == 0, done.stderr
    assert "line 8: not valid JSON" in done.stderr  # reported, and the run went on
    report = load(out)
    assert_expected_stats(report)
    assert report["unreadable_lines"][0]["line"] == 8
    # 500s and 429s were retried, the hung request timed out once and was retried.
    assert report["timing"]["retries"] == 2 + 3 + 1
    assert server.requests == 28 + 6
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
    assert load(out)["samples_per_row"] == 6 and list(load(out)["pass_at_k"]) == [
        "1",
        "2",
        "3",
        "4",
        "5",
        "6",
    ]

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


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_endpoint_down_marks_rows_not_sampled_then_resumes(server: FakeModelServer, tmp_path: Path) -> None:
    rows = [rft_row(f"d{i}", "right") for i in range(3)]
    data = write_data(tmp_path / "d.jsonl", rows)
    out = tmp_path / "out"
    down = f"http://127.0.0.1:{_closed_port()}/v1"
    failed = run_eval(tmp_path, GRADER, data, out, "-n", "2", "--base-url", down, "--retries", "2")
    assert failed.returncode == 1
    assert "6 samples were not sampled" in failed.stderr and "cannot reach" in failed.stderr
    report = load(out)
    assert report["rows_not_sampled"] == [0, 1, 2] and report["rows_scored"] == 0
    assert report["mean_reward"] is None and report["pass_at_k"] == {"1": None, "2": None}
    assert report["timing"]["requests"] == 6 * 3  # every sample tried three times
    for row in report["per_row"]:
        assert row["sampled"] is False and row["mean"] is None and row["rewards"] == []
        assert row["missing_samples"] == 2 and "gave up after 3 attempts" in row["not_sampled_because"][0]
    assert all(
        r["sample"] is None and r["reward"] is None and r["errors"] == ["not_sampled"] for r in lines(out)
    )

    fixed = run_eval(tmp_path, GRADER, data, out, "-n", "2", "--base-url", server.base_url)
    assert fixed.returncode == 0, fixed.stderr
    assert server.requests == 6
    report = load(out)
    assert report["rows_not_sampled"] == [] and report["pass_at_k"] == {"1": 1.0, "2": 1.0}


def test_a_failing_row_is_left_out_not_scored_zero(server: FakeModelServer, tmp_path: Path) -> None:
    rows = [rft_row("ok", "right"), rft_row("bad", "fail"), rft_row("no", "wrong")]
    out = tmp_path / "out"
    done = run_eval(
        tmp_path,
        GRADER,
        write_data(tmp_path / "d.jsonl", rows),
        out,
        "-n",
        "2",
        "--base-url",
        server.base_url,
        "--retries",
        "1",
    )
    assert done.returncode == 1
    report = load(out)
    assert report["rows_not_sampled"] == [1] and report["rows_scored"] == 2
    assert report["pass_at_k"]["1"] == 0.5 and report["mean_reward"] == 0.5
    assert report["share_all_min"] == 0.5 and report["share_all_max"] == 0.5
    assert "500 from" in report["per_row"][1]["not_sampled_because"][0]


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
    nowhere = f"http://127.0.0.1:{_closed_port()}/v1"  # any request would fail the run
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


def test_rerun_resamples_changed_prompts_and_refuses_another_model(
    server: FakeModelServer, tmp_path: Path
) -> None:
    rows = [rft_row("p0", "right"), rft_row("p1", "right")]
    data = write_data(tmp_path / "d.jsonl", rows)
    out = tmp_path / "out"
    assert run_eval(tmp_path, GRADER, data, out, "-n", "2", "--base-url", server.base_url).returncode == 0
    assert server.requests == 4
    rows[1] = rft_row("p1", "wrong")  # the second row's prompt changed
    write_data(data, rows)
    done = run_eval(tmp_path, GRADER, data, out, "-n", "2", "--base-url", server.base_url)
    assert done.returncode == 0, done.stderr
    assert server.requests == 6 and load(out)["samples"]["reused"] == 2
    assert [r["rewards"] for r in load(out)["per_row"]] == [[1.0, 1.0], [0.0, 0.0]]
    other = subprocess.run(
        [sys.executable, "-m", "rftgrade", "eval", str(tmp_path / "grader.json"), str(data), "--model", "other",
         "--out", str(out), "--base-url", server.base_url],
        capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120,
    )  # fmt: skip
    assert other.returncode == 2 and "model='base-model'" in other.stderr and "--out" in other.stderr
    assert server.requests == 6


def test_ctrl_c_keeps_what_was_sampled(server: FakeModelServer, tmp_path: Path) -> None:
    import signal
    import time

    rows = [rft_row(f"k{i}", "slow:0.3") for i in range(8)]
    data = write_data(tmp_path / "d.jsonl", rows)
    (tmp_path / "grader.json").write_text(json.dumps(GRADER))
    out = tmp_path / "out"
    argv = [sys.executable, "-m", "rftgrade", "eval", str(tmp_path / "grader.json"), str(data), "--model",
            "base-model", "-n", "2", "--concurrency", "2", "--base-url", server.base_url, "--out", str(out)]  # fmt: skip
    proc = subprocess.Popen(
        argv, env={**os.environ, "PYTHONPATH": str(ROOT)}, stderr=subprocess.PIPE, text=True
    )
    store = out / "samples.jsonl"
    deadline = time.time() + 60
    while time.time() < deadline and (not store.is_file() or len(store.read_text().splitlines()) < 4):
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=60)
    assert proc.returncode != 0
    kept = [r for r in lines(out) if r["sample"] is not None]
    assert 4 <= len(kept) < 16
    before = server.requests
    done = subprocess.run(argv, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True,
                          timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert server.requests - before == 16 - len(kept)  # nothing kept is asked for again
    assert load(out)["samples"]["reused"] + load(out)["samples"]["graded_now"] == 16
    assert load(out)["pass_at_k"]["1"] == 1.0
