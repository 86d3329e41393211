"""Which isolation a python grader gets when its JSON does not say (issue 15, safe by default)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rftgrade import Grader, validate
from rftgrade._isolation import choose_isolation
from rftgrade.sandbox import Limits, SandboxExecutor
from rftgrade.sandbox._select import backend_class

from .conftest import ROOT, require_or_skip

RUNS_CODE = {
    "exec": "def grade(sample, item):\n    exec(sample['output_text'])\n    return 1.0\n",
    "eval": "def grade(s, i):\n    return float(eval(s['output_text']))\n",
    "compile": "def grade(s, i):\n    c = compile(s['output_text'], 'x', 'exec')\n    return 1.0\n",
    "subprocess": "import subprocess\ndef grade(s, i):\n    return 1.0\n",
    "from subprocess": "from subprocess import run\ndef grade(s, i):\n    return 1.0\n",
    "os.system": "import os\ndef grade(s, i):\n    os.system('true')\n    return 1.0\n",
    "from os import system": "from os import system\ndef grade(s, i):\n    return 1.0\n",
    "ctypes": "import ctypes\ndef grade(s, i):\n    return 1.0\n",
    "importlib computed": "import importlib\ndef grade(s, i):\n    importlib.import_module(s['output_text'])\n    return 1.0\n",
    "runpy": "import runpy\ndef grade(s, i):\n    runpy.run_path('/tmp/x.py')\n    return 1.0\n",
    "execv": "import os\ndef grade(s, i):\n    os.execv('/tmp/x', ['x'])\n",
}
PURE = {
    "plain": "def grade(sample, item):\n    return 1.0 if sample['output_text'] == item['answer'] else 0.0\n",
    "re.compile": "import re\nP = re.compile('a+')\ndef grade(s, i):\n    return 1.0 if P.match(s['output_text']) else 0.0\n",
    "importlib constant": "import importlib\nm = importlib.import_module('json')\ndef grade(s, i):\n    return 1.0\n",
    "json and math": "import json, math\ndef grade(s, i):\n    return math.tanh(len(json.dumps(i)))\n",
}


@pytest.mark.parametrize("name", sorted(RUNS_CODE))
def test_code_that_runs_what_it_was_given_gets_sample_isolation(name: str) -> None:
    choice = choose_isolation(RUNS_CODE[name])
    assert choice.isolation == "sample", choice
    assert "line" in choice.reason


@pytest.mark.parametrize("name", sorted(PURE))
def test_pure_code_keeps_worker_isolation(name: str) -> None:
    assert choose_isolation(PURE[name]).isolation == "worker"


def test_validate_reports_the_choice_and_why(tmp_path: Path) -> None:
    spec = {
        "type": "multi",
        "name": "m",
        "calculate_output": "a + b",
        "graders": {
            "a": {"type": "python", "name": "a", "source": RUNS_CODE["eval"]},
            "b": {"type": "python", "name": "b", "source": PURE["plain"], "isolation": "sample"},
        },
    }
    report = validate(spec)
    assert report.isolation["graders.a"][0] == "sample" and "eval()" in report.isolation["graders.a"][1]
    assert report.isolation["graders.b"] == ("sample", "the grader's JSON says so")
    path = tmp_path / "g.json"
    path.write_text(json.dumps(spec["graders"]["a"]))  # type: ignore[index]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200"}
    out = subprocess.run(
        [sys.executable, "-m", "rftgrade", "validate", str(path)], capture_output=True, text=True, env=env
    )
    assert out.returncode == 0, out.stderr
    assert "isolation of the grader: sample (line 2: eval() runs code" in out.stdout


# The review's attack: exec of model output in a shared worker lets one sample
# make every later wrong answer score 1.0.
EXEC_GRADER = r"""
STATE = {"answer": None}

def grade(sample, item):
    STATE["answer"] = item["answer"]
    scope = {"STATE": STATE}
    try:
        exec(sample["output_text"], scope)
    except Exception:
        pass
    return 1.0 if STATE["answer"] == "ok" and item["answer"] == "ok" and "ok" in sample["output_text"] else 0.0
"""


@pytest.mark.parametrize("engine", ["bwrap", "docker"])
def test_a_grader_that_execs_model_output_is_isolated_by_default(engine: str) -> None:
    require_or_skip(backend_class(engine).unavailable_reason() is None, f"the {engine} sandbox")
    executor = SandboxExecutor(engine, workers=1, limits=Limits(timeout=5.0))
    poison = "import sys; sys.modules['__grader__'].grade.__code__ = (lambda sample, item: 1.0).__code__"
    rows = [(poison, {"answer": "no"})] + [("wrong", {"answer": "no"})] * 4 + [("ok", {"answer": "ok"})]
    grader = Grader({"type": "python", "name": "execs", "source": EXEC_GRADER}, python=executor)
    try:
        results = grader.run_batch(rows)
    finally:
        grader.close()
    assert [r.reward for r in results] == [0.0] * 5 + [1.0]
    assert all(str(r.scores["isolation"]).startswith("sample (line ") for r in results)
    # The same rows with worker isolation forced: the attack works, so the default is what saves it.
    forced = SandboxExecutor(engine, workers=1, isolation="worker", limits=Limits(timeout=5.0))
    grader = Grader({"type": "python", "name": "execs", "source": EXEC_GRADER}, python=forced)
    try:
        shared = grader.run_batch(rows)
    finally:
        grader.close()
    assert [r.reward for r in shared][1:5] == [1.0] * 4
    assert shared[0].scores["isolation"] == "worker (the sandbox executor was told so)"
