"""docs/migrating-from-openai.md: every `rftgrade` command of its bash blocks runs as written."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

from rftgrade.testing.fake_model import FakeModelServer

from .conftest import ROOT

DOC = ROOT / "docs" / "migrating-from-openai.md"


def commands() -> list[str]:
    blocks = re.findall(r"```bash\n(.*?)```", DOC.read_text(), flags=re.S)
    lines = [line for block in blocks for line in block.replace("\\\n", " ").splitlines()]
    return [" ".join(line.split()) for line in lines if line.strip().startswith("rftgrade ")]


def test_the_guide_has_each_step() -> None:
    verbs = [c.split()[1] for c in commands()]
    assert verbs == ["validate", "eval", "grade", "check", *["export"] * 6, "eval", "compare"]


def test_every_command_of_the_guide_runs_as_written(tmp_path: Path) -> None:
    (tmp_path / "grader_examples").symlink_to(ROOT / "grader_examples")
    with FakeModelServer() as model:
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "OPENAI_BASE_URL": model.base_url,
            "OPENAI_API_KEY": "sk-test",
            "COLUMNS": "200",
        }
        for command in commands():
            done = subprocess.run(
                [sys.executable, "-m", "rftgrade", *shlex.split(command)[1:]],
                cwd=tmp_path,
                capture_output=True,
                text=True,
                env=env,
                timeout=300,
            )
            assert done.returncode == 0, (command, done.stdout[-2000:], done.stderr[-2000:])
    assert (tmp_path / "eval-out" / "eval.json").is_file()
    # The fake model answers alike whatever it is called: the same rewards, no clear change.
    compared = json.loads((tmp_path / "compare-out" / "compare.json").read_text())
    assert compared["verdict"] == "no clear change" and compared["b"]["model"] == "tuned-model"
    assert len((tmp_path / "graded.jsonl").read_text().splitlines()) == 6
    for trainer in ("verl", "trl", "openrlhf"):
        assert len((tmp_path / f"train-{trainer}.jsonl").read_text().splitlines()) == 4
    assert "data.train_batch_size=16" in (tmp_path / "train-verl.sh").read_text()
    assert "gradient_accumulation_steps: 16" in (tmp_path / "train-trl.yaml").read_text()
    assert "--train.num_episodes 2" in (tmp_path / "train-openrlhf.sh").read_text()
