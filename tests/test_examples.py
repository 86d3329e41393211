"""Every example grader grades its dataset to the expected rewards, via library and CLI alike."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from rftgrade import Grader

from .conftest import EXAMPLES

FOLDERS = sorted(p.parent for p in EXAMPLES.glob("*/grader.json") if (p.parent / "data.jsonl").is_file())


def rows(folder: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in (folder / "data.jsonl").read_text().splitlines() if line.strip()]


@pytest.mark.parametrize("folder", FOLDERS, ids=lambda p: p.name)
def test_library_and_cli_agree_with_expected(folder: Path, tmp_path: Path) -> None:
    data = rows(folder)
    grader = Grader(folder / "grader.json")
    if grader.type == "python" or (grader.compiled.sub_graders() and not grader.compiled.is_sync):
        pytest.skip("needs a sandbox; covered by the sandbox tests")
    results = grader.run_batch(data)  # type: ignore[arg-type]
    for row, result in zip(data, results, strict=True):
        if "expected_reward" in row:
            assert result.reward == pytest.approx(row["expected_reward"]), (folder.name, row)
        assert 0.0 <= result.reward <= 1.0
    out = tmp_path / "out.jsonl"
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
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    cli_rewards = [json.loads(line)["reward"] for line in out.read_text().splitlines()]
    assert cli_rewards == [r.reward for r in results]
