"""``rftgrade eval`` when things go wrong: a dead or failing endpoint, Ctrl-C, re-runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from rftgrade.testing.fake_model import FakeModelServer

from .helpers import (
    GRADER,
    ROOT,
    closed_port,
    lines,
    load,
    rft_row,
    run_eval,
    write_data,
)


def test_endpoint_down_marks_rows_not_sampled_then_resumes(server: FakeModelServer, tmp_path: Path) -> None:
    rows = [rft_row(f"d{i}", "right") for i in range(3)]
    data = write_data(tmp_path / "d.jsonl", rows)
    out = tmp_path / "out"
    down = f"http://127.0.0.1:{closed_port()}/v1"
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
    # Ctrl-C must reach the child even where this run inherited SIGINT ignored (a job
    # started in the background by a non-interactive shell, as some CI runners do):
    # Python keeps an ignored SIGINT ignored, and the run would finish with 0.
    proc = subprocess.Popen(
        argv,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
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
    assert server.max_in_flight == 2  # --concurrency 2: two requests at a time, never more
    before = server.requests
    done = subprocess.run(argv, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True,
                          timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert server.requests - before == 16 - len(kept)  # nothing kept is asked for again
    assert load(out)["samples"]["reused"] + load(out)["samples"]["graded_now"] == 16
    assert load(out)["pass_at_k"]["1"] == 1.0


def test_a_dead_endpoint_is_given_up_on_after_a_run_of_failures(tmp_path: Path) -> None:
    data = write_data(tmp_path / "d.jsonl", [rft_row(f"g{i}", "right") for i in range(10)])
    down = f"http://127.0.0.1:{closed_port()}/v1"
    out = tmp_path / "out"
    args = ("-n", "2", "--concurrency", "1", "--retries", "0", "--base-url", down)
    failed = run_eval(tmp_path, GRADER, data, out, *args)
    assert failed.returncode == 1
    report = load(out)
    # max(16, 2 x concurrency) failures in a row, then the other 4 samples are not tried.
    assert report["timing"]["requests"] == 16 and report["samples"]["not_sampled"] == 20
    assert "not tried: the previous 16 samples all failed" in report["per_row"][9]["not_sampled_because"][0]
