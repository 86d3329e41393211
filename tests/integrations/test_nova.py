"""AWS Nova RFT: the reward Lambda handler, invoked as Lambda would with events in AWS's
documented shape, from the bundle ``rftgrade export nova-lambda`` writes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

MULTI = {
    "type": "multi",
    "name": "compliance",
    "calculate_output": "0.5 * compliant + 0.5 * explained",
    "graders": {
        "compliant": {
            "type": "string_check",
            "name": "compliant",
            "input": "{{ sample.output_json.compliant }}",
            "reference": "{{ item.reference_answer.compliant }}",
            "operation": "eq",
        },
        "explained": {
            "type": "text_similarity",
            "name": "explained",
            "input": "{{ sample.output_json.explanation }}",
            "reference": "{{ item.reference_answer.explanation }}",
            "evaluation_metric": "fuzzy_match",
        },
    },
}
PYTHON = {
    "type": "python",
    "name": "py",
    "source": "def grade(sample, item):\n    return 1.0 if item['reference_answer'] in sample['output_text'] else 0.0\n",
}


def export(tmp_path: Path, spec: dict[str, Any], name: str) -> Path:
    grader = tmp_path / f"{name}.json"
    grader.write_text(json.dumps(spec))
    out = tmp_path / name
    proc = subprocess.run(
        [sys.executable, "-m", "rftgrade", "export", "nova-lambda", str(grader), "--out", str(out)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    return out


def invoke(bundle: Path, event: Any) -> Any:
    """Call the bundle's handler as Lambda does: its folder first on the path, cwd there,
    nothing from this checkout or the environment (python -I)."""
    code = (
        "import json, sys; sys.path.insert(0, '.'); import lambda_function, rftgrade;"
        "assert rftgrade.__file__.startswith(sys.argv[1]), rftgrade.__file__;"
        "print(json.dumps(lambda_function.lambda_handler(json.loads(sys.stdin.read()), None)))"
    )
    proc = subprocess.run(
        [sys.executable, "-I", "-c", code, str(bundle)],
        input=json.dumps(event),
        capture_output=True,
        text=True,
        cwd=bundle,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.splitlines()[-1])


def sample(sid: str, answer: Any, **fields: Any) -> dict[str, Any]:
    user = {"role": "user", "content": "Do you have a dedicated security team?"}
    turn = {"role": "assistant", "content": answer if isinstance(answer, str) else json.dumps(answer)}
    return {"id": sid, "messages": [user, turn], **fields}


REFERENCE = {"compliant": "No", "explanation": "As an AI I do not have a security team"}


def test_nova_lambda_bundle_grades_awss_event_shape(tmp_path: Path) -> None:
    bundle = export(tmp_path, MULTI, "bundle")
    assert {p.name for p in bundle.iterdir()} >= {
        "lambda_function.py",
        "grader.json",
        "requirements.txt",
        "rftgrade",
    }
    assert "pydantic" in (bundle / "requirements.txt").read_text()
    event = [
        # Nova's "Implementing reward functions": the row's fields beside messages.
        sample(
            "123",
            {"compliant": "No", "explanation": "As an AI I do not have a security team"},
            reference_answer=REFERENCE,
        ),
        sample("124", {"compliant": "Yes", "explanation": "nothing"}, reference_answer=REFERENCE),
        # SageMaker's variant: the row's fields under "metadata".
        sample(
            "125",
            {"compliant": "No", "explanation": "As an AI I do not have a security team"},
            metadata={"reference_answer": REFERENCE, "my_key": "sample-001"},
        ),
        # Unscorable: no reference, and no model turn at all.
        sample("126", {"compliant": "No"}),
        {"id": "127", "messages": [{"role": "user", "content": "hi"}], "reference_answer": REFERENCE},
    ]
    answers = invoke(bundle, event)
    assert [a["id"] for a in answers] == ["123", "124", "125", "126", "127"]
    scores = [a["aggregate_reward_score"] for a in answers]
    assert scores[0] == scores[2] == 1.0 and scores[1] < 0.5 and scores[3] == scores[4] == 0.0
    # The same metrics for every sample: the sub-rewards, then the failure flag.
    for a in answers:
        assert [(m["name"], m["type"]) for m in a["metrics_list"]] == [
            ("compliant", "Reward"),
            ("explained", "Reward"),
            ("rftgrade_error", "Metric"),
        ]
    errors = [a["metrics_list"][-1]["value"] for a in answers]
    assert errors == [0.0, 0.0, 0.0, 1.0, 1.0]


def test_nova_lambda_python_grader_runs_in_the_lambdas_python(tmp_path: Path) -> None:
    bundle = export(tmp_path, PYTHON, "py")
    answers = invoke(
        bundle,
        [sample("a", "the answer is 42", reference_answer="42"), sample("b", "7", reference_answer="42")],
    )
    assert [a["aggregate_reward_score"] for a in answers] == [1.0, 0.0]
    assert answers[0]["metrics_list"] == [{"name": "rftgrade_error", "value": 0.0, "type": "Metric"}]


def test_export_refuses_an_invalid_grader(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"type": "string_check", "name": "x"}))
    proc = subprocess.run(
        [sys.executable, "-m", "rftgrade", "export", "nova-lambda", str(bad), "--out", str(tmp_path / "o")],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 1 and "required field `input` is missing" in proc.stderr
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("event", [[], [{"id": "x", "messages": []}]])
def test_nova_lambda_odd_batches(tmp_path: Path, event: Any) -> None:
    answers = invoke(export(tmp_path, MULTI, "b"), event)
    assert len(answers) == len(event) and all(a["aggregate_reward_score"] == 0.0 for a in answers)
