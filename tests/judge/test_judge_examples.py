"""The model-grader examples, run against a scripted loopback judge, via library and CLI."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from rftgrade import Grader
from rftgrade.judge import BatchScorer
from rftgrade.testing import FakeJudgeServer

from ..conftest import EXAMPLES


def scripted(body: dict[str, Any]) -> Any:
    """A stand-in judge: keyword rules in place of a model's judgement."""
    text = body["messages"][-1]["content"]
    text = text if isinstance(text, str) else " ".join(p.get("text", "") for p in text)
    reply = text.split("Assistant reply:")[-1].split("Answer to grade:")[-1]
    schema = body.get("response_format", {}).get("json_schema", {}).get("schema", {})
    if schema.get("properties", {}).get("result", {}).get("type") == "string":
        return "violating" if "weapon" in reply.lower() else "allowed"
    if "Answer to grade:" in text:  # the tax rubric: a point per figure the answer states
        return min(1.0, len(re.findall(r"\$[\d,]+|\d+\.\d+%", reply)) / 12)
    return min(1.0, len(reply.split()) / 20)  # helpfulness: longer answers help more


@pytest.fixture(scope="module")
def judge_url() -> Iterator[str]:
    with FakeJudgeServer(responder=scripted) as server:
        yield server.base_url


def rows(name: str) -> list[dict[str, Any]]:
    return [
        json.loads(line) for line in (EXAMPLES / name / "data.jsonl").read_text().splitlines() if line.strip()
    ]


def test_tax_rubric_orders_answers(judge_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", judge_url)
    monkeypatch.setenv("OPENAI_API_KEY", "test")
    monkeypatch.delenv("RFTGRADE_MODELS", raising=False)
    grader = Grader(EXAMPLES / "tax_rubric" / "grader.json", judge=BatchScorer())
    results = grader.run_batch(rows("tax_rubric"))  # type: ignore[arg-type]
    grader.close()
    rewards = [r.reward for r in results]
    assert all(r.ok for r in results)
    assert rewards[0] > rewards[1] > rewards[2] and rewards[3] == rewards[4] == 0.0


def test_content_policy_multi_via_cli(judge_url: str, tmp_path: Any) -> None:
    env = {**os.environ, "OPENAI_BASE_URL": judge_url, "OPENAI_API_KEY": "test"}
    env.pop("RFTGRADE_MODELS", None)
    out = tmp_path / "out.jsonl"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "rftgrade",
            "grade",
            str(EXAMPLES / "content_policy" / "grader.json"),
            str(EXAMPLES / "content_policy" / "data.jsonl"),
            "-o",
            str(out),
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    results = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["sub_rewards"]["policy"] for r in results] == [1.0, 1.0, 0.0, 1.0]
    assert results[2]["reward"] == 0.0 and results[0]["reward"] > results[1]["reward"]
    assert results[0]["metadata"]["scores"]["policy"]["label"] == "allowed"


def test_validate_without_any_judge_warns_and_require_judge_fails_clearly(tmp_path: Any) -> None:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("OPENAI_BASE_URL", "OPENAI_API_KEY", "RFTGRADE_MODELS")
    }
    command = [sys.executable, "-m", "rftgrade", "validate", str(EXAMPLES / "tax_rubric" / "grader.json")]
    # Offline, as OpenAI's validate: valid, with a warning that runs fail until a judge is routed.
    proc = subprocess.run(command, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "warning" in proc.stderr and "OPENAI_BASE_URL" in proc.stderr
    proc = subprocess.run(
        [*command, "--require-judge"], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60
    )
    assert proc.returncode == 1
    assert "model" in proc.stderr and "OPENAI_BASE_URL" in proc.stderr
