"""The real `rftgrade` command, run as a subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from .conftest import EXAMPLES, string_check


def cli(*args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rftgrade", *args], capture_output=True, text=True, input=input, timeout=120
    )


def test_validate_ok() -> None:
    proc = cli("validate", str(EXAMPLES / "math_answer" / "grader.json"))
    assert proc.returncode == 0, proc.stderr
    assert "valid multi grader" in proc.stdout


def test_validate_lists_every_problem_with_path(tmp_path: Path) -> None:
    bad = {
        "type": "multi",
        "name": "m",
        "calculate_output": "a + zz",
        "graders": {"a": string_check("neq"), "b": string_check(input="{{ nope.x }}")},
    }
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(bad))
    proc = cli("validate", str(path))
    assert proc.returncode == 1
    assert "graders.a.operation" in proc.stderr and "did you mean `ne`" in proc.stderr


def test_validate_reports_formula_and_template_together(tmp_path: Path) -> None:
    bad = {
        "type": "multi",
        "name": "m",
        "calculate_output": "a + zz",
        "graders": {"a": string_check(input="{{ nope.x }}")},
    }
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(bad))
    proc = cli("validate", str(path))
    assert proc.returncode == 1
    assert "graders.a.input" in proc.stderr and "calculate_output" in proc.stderr


def test_run_json_prints_openai_response(tmp_path: Path) -> None:
    grader = tmp_path / "g.json"
    grader.write_text(json.dumps(string_check()))
    proc = cli("run", str(grader), "--sample", "42", "--item", '{"answer": "42"}', "--json")
    assert proc.returncode == 0, proc.stderr
    body = json.loads(proc.stdout)
    assert body["reward"] == 1.0
    assert set(body) == {"reward", "metadata", "sub_rewards", "model_grader_token_usage_per_model"}
    assert len(body["metadata"]["errors"]) == 14


def test_run_reads_at_files(tmp_path: Path) -> None:
    grader = tmp_path / "g.json"
    grader.write_text(json.dumps(string_check(input="{{ sample.output_json.x }}")))
    (tmp_path / "s.json").write_text('{"x": "7"}')
    (tmp_path / "i.json").write_text('{"answer": "7"}')
    proc = cli(
        "run",
        str(grader),
        "--sample",
        f"@{tmp_path / 's.json'}",
        "--item",
        f"@{tmp_path / 'i.json'}",
        "--json",
    )
    assert json.loads(proc.stdout)["reward"] == 1.0


def test_run_bad_item_is_a_clear_error(tmp_path: Path) -> None:
    grader = tmp_path / "g.json"
    grader.write_text(json.dumps(string_check()))
    proc = cli("run", str(grader), "--sample", "x", "--item", "{nope")
    assert proc.returncode == 2 and "--item is not valid JSON" in proc.stderr


def test_grade_keeps_order_reports_bad_lines_and_goes_on(tmp_path: Path) -> None:
    grader = tmp_path / "g.json"
    grader.write_text(json.dumps(string_check()))
    data = tmp_path / "d.jsonl"
    data.write_text(
        "\n".join(
            [
                json.dumps({"item": {"answer": "a"}, "sample": "a"}),
                "{not json",
                json.dumps({"item": {"answer": "a"}, "sample": "b"}),
                "",
                json.dumps({"item": {"answer": "c"}, "sample": {"output_text": "c"}}),
                json.dumps(["no"]),
            ]
        )
        + "\n"
    )
    out = tmp_path / "out.jsonl"
    proc = cli("grade", str(grader), str(data), "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["reward"] for r in rows] == [1.0, 0.0, 0.0, 1.0, 0.0]
    assert rows[1]["metadata"]["errors"]["sample_parse_error"]
    assert "line 2" in proc.stderr and "line 6" in proc.stderr
    assert "mean_reward" in proc.stdout and "sample_parse_error" in proc.stdout


def test_grade_without_output_prints_jsonl_to_stdout() -> None:
    proc = cli(
        "grade",
        str(EXAMPLES / "support_summary" / "grader.json"),
        str(EXAMPLES / "support_summary" / "data.jsonl"),
    )
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(x) for x in proc.stdout.splitlines()]
    assert len(lines) == 5 and lines[0]["reward"] == 1.0
