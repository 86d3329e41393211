"""Shared by the eval and compare tests: the dataset rows the fake model understands, running
the CLIs, and evals graded from given replies."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest

from rftgrade import Grader
from rftgrade.evaluate import EvalConfig
from rftgrade.evaluate import run_eval as library_run_eval

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


def rft_row(answer: str, mode: str, **extra: Any) -> dict[str, Any]:
    prompt = f"What is the code? answer={answer} mode={mode}"
    return {"messages": [{"role": "user", "content": prompt}], "reference_answer": answer, **extra}


def write_data(path: Path, rows: list[dict[str, Any]], bad_line_after: int | None = None) -> Path:
    lines = [json.dumps(r) for r in rows]
    if bad_line_after is not None:
        lines.insert(bad_line_after, '{"messages": [oops')
        lines.insert(bad_line_after + 1, '{"reference_answer": "no prompt"}')
    path.write_text("\n".join(lines) + "\n")
    return path


def run_eval(
    tmp: Path, grader: dict[str, Any], data: Path, out: Path, *args: str
) -> subprocess.CompletedProcess[str]:
    grader_path = tmp / "grader.json"
    grader_path.write_text(json.dumps(grader))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OPENAI_API_KEY": "sk-test", "COLUMNS": "250"}
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


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def compare_cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "250"}
    return subprocess.run(
        [sys.executable, "-m", "rftgrade", "compare", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def graded(tmp: Path, name: str, grader: dict[str, Any], data: Path, samples: list[Any], model: str) -> Path:
    """An eval of ``samples`` (one list of replies a row) through the library, as `--samples` does."""
    made = tmp / f"{name}.samples.jsonl"
    made.write_text(
        "".join(
            json.dumps({"row": i, "n": n, "sample": s}) + "\n"
            for i, row in enumerate(samples)
            for n, s in enumerate(row)
        )
    )
    out = tmp / name
    with Grader(grader, sandbox="process") as g:
        library_run_eval(
            g, data, out, EvalConfig(model=model, samples_per_row=len(samples[0])), samples_file=made
        )
    return out


CONTAINS = {**GRADER, "name": "contains", "operation": "like"}
