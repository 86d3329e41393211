"""Every example grader grades its dataset to the expected rewards, via library and CLI alike,
in every sandbox that runs python graders."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from rftgrade import Grader
from rftgrade.sandbox import SandboxExecutor
from rftgrade.sandbox._select import backend_class

from .conftest import EXAMPLES, require_or_skip

FOLDERS = sorted(
    p.parent
    for p in EXAMPLES.glob("*/grader.json")
    if (p.parent / "data.jsonl").is_file() and '_model"' not in p.read_text()  # judges: tests/judge/
)


def rows(folder: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in (folder / "data.jsonl").read_text().splitlines() if line.strip()]


def _uses_python(folder: Path) -> bool:
    return '"python"' in (folder / "grader.json").read_text()


CASES = [(f, b) for f in FOLDERS for b in (["docker", "bwrap", "process"] if _uses_python(f) else [None])]


@pytest.mark.parametrize(
    ("folder", "sandbox"), CASES, ids=lambda v: v.name if isinstance(v, Path) else str(v)
)
def test_library_and_cli_agree_with_expected(folder: Path, sandbox: str | None, tmp_path: Path) -> None:
    data = rows(folder)
    executor = None
    if sandbox is not None:
        require_or_skip(backend_class(sandbox).unavailable_reason() is None, f"the {sandbox} sandbox")
        executor = SandboxExecutor(sandbox, workers=2)
    grader = Grader(folder / "grader.json", python=executor)
    try:
        results = grader.run_batch(data)  # type: ignore[arg-type]
    finally:
        grader.close()
    for row, result in zip(data, results, strict=True):
        if "expected_reward" in row:
            assert result.reward == pytest.approx(row["expected_reward"]), (
                folder.name,
                row,
                result.error_messages,
            )
            if float(row["expected_reward"]) > 0:  # type: ignore[arg-type]
                assert result.ok, result.error_messages
        if "expected_error" in row:
            assert getattr(result.errors, str(row["expected_error"])), result.to_dict()
        assert 0.0 <= result.reward <= 1.0
    out = tmp_path / "out.jsonl"
    extra = ["--sandbox", sandbox] if sandbox else []
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "rftgrade",
            "grade",
            str(folder / "grader.json"),
            str(folder / "data.jsonl"),
            "-o",
            str(out),
            *extra,
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    cli_rewards = [json.loads(line)["reward"] for line in out.read_text().splitlines()]
    assert cli_rewards == pytest.approx([r.reward for r in results])
