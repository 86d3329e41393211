"""Moving from OpenAI: the grader in every form a team holds, RFT dataset rows, dataset checks."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import rftgrade
from rftgrade._datacheck import check_dataset
from rftgrade._exceptions import GraderValidationError
from rftgrade._forms import read_grader_source
from rftgrade._load import grader_to_dict, load_spec
from rftgrade._registry import GraderRegistry
from rftgrade._rows import split_group, split_row

from .conftest import EXAMPLES, string_check

JOB_DIR = EXAMPLES / "openai_rft_job"
JOB = json.loads((JOB_DIR / "job.json").read_text())
GRADER = JOB["method"]["reinforcement"]["grader"]


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rftgrade", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**__import__("os").environ, "COLUMNS": "200"},
    )


def rows_of(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


FORMS: dict[str, Any] = {
    "grader": GRADER,
    "fine_tuning_job": JOB,
    "method": JOB["method"],
    "reinforcement": JOB["method"]["reinforcement"],
    "testing_criteria": {**string_check(), "pass_threshold": 1.0},
    "graders_run": {"grader": GRADER, "item": {}, "model_sample": "x"},
}


@pytest.mark.parametrize("form", sorted(FORMS))
def test_every_form_is_read_and_named(form: str) -> None:
    source = read_grader_source(FORMS[form])
    assert source.form == form
    spec = load_spec(FORMS[form])
    expected = FORMS[form] if form == "testing_criteria" else GRADER
    assert grader_to_dict(spec) == grader_to_dict(load_spec(expected))


def test_job_fields_are_kept_for_eval() -> None:
    source = read_grader_source(JOB)
    assert source.job is not None
    assert source.job["model"] == "o4-mini-2025-04-16"
    assert source.job["training_file"].startswith("file-")
    assert source.job["hyperparameters"]["n_epochs"] == 2
    assert "response_format" in source.job
    assert "o4-mini" in source.describe() and "method.reinforcement.grader" in source.describe()


def test_eval_with_one_criterion_is_read_and_two_are_an_error() -> None:
    one = {"name": "e", "testing_criteria": [string_check()]}
    assert read_grader_source(one).form == "testing_criteria"
    with pytest.raises(GraderValidationError) as info:
        load_spec({"testing_criteria": [string_check(name="a"), string_check(name="b")]})
    (problem,) = info.value.problems
    assert problem.path == "testing_criteria" and "'a'" in problem.message and "multi" in problem.message


def test_a_supervised_job_says_it_has_no_grader() -> None:
    with pytest.raises(GraderValidationError) as info:
        load_spec({"model": "m", "training_file": "f", "method": {"type": "supervised", "supervised": {}}})
    (problem,) = info.value.problems
    assert problem.path == "method.type" and "reinforcement" in problem.message


def test_none_of_the_forms_names_what_was_expected_at_the_root() -> None:
    with pytest.raises(GraderValidationError) as info:
        load_spec({"model": "m", "training_file": "f"})
    (problem,) = info.value.problems
    assert problem.path == ""
    assert "fine-tuning job" in problem.message and "`model`" in problem.message


def test_registry_and_grader_take_a_job(tmp_path: Path) -> None:
    registry = GraderRegistry()
    try:
        entry = registry.add(JOB_DIR / "job.json", name="math")
        assert registry.get("math") is entry and entry.name == "math_answer"
    finally:
        registry.close()
    grader = rftgrade.Grader(JOB_DIR / "job.json")
    rows = [split_row(r) for r in rows_of(JOB_DIR / "data.jsonl")]
    rewards = [r.reward for r in grader.run_batch([(s, i) for i, s in rows])]
    assert rewards == [r["expected_reward"] for r in rows_of(JOB_DIR / "data.jsonl")]


# -- RFT rows ---------------------------------------------------------------------------------------


def test_rft_row_sample_forms() -> None:
    base = {"messages": [{"role": "user", "content": "q"}], "reference_answer": "a"}
    item, sample = split_row({**base, "sample": "a"})
    assert item == base and sample == "a"
    nova = {**base, "messages": [*base["messages"], {"role": "assistant", "content": "a"}]}
    item, sample = split_row(nova)
    assert item == base and sample == {"role": "assistant", "content": "a"}
    item, sample = split_row(base)
    assert item == base and sample is None
    item, samples = split_group({**base, "samples": ["a", "b"]})
    assert item == base and samples == ["a", "b"]


def test_grade_reads_rft_rows_of_a_job() -> None:
    proc = cli("grade", str(JOB_DIR / "job.json"), str(JOB_DIR / "data.jsonl"))
    assert proc.returncode == 0, proc.stderr
    assert "fine-tuning job" in proc.stderr
    got = [json.loads(line)["reward"] for line in proc.stdout.splitlines() if line.startswith("{")]
    assert got == [r["expected_reward"] for r in rows_of(JOB_DIR / "data.jsonl")]


def test_grade_of_rows_without_samples_says_how_and_exits_1() -> None:
    proc = cli("grade", str(JOB_DIR / "job.json"), str(JOB_DIR / "train.jsonl"))
    assert proc.returncode == 1
    assert "line 1: row has no sample" in proc.stderr.replace("\n", " ")
    assert "rftgrade eval" in proc.stderr


def test_check_reads_rft_rows_with_samples_and_counts_every_flat_group(tmp_path: Path) -> None:
    grader = tmp_path / "g.json"
    grader.write_text(
        json.dumps(
            {
                "type": "text_similarity",
                "name": "sim",
                "input": "{{sample.output_text}}",
                "reference": "{{item.reference_answer}}",
                "evaluation_metric": "fuzzy_match",
            }
        )
    )
    msgs = [{"role": "user", "content": "q"}]
    data = tmp_path / "d.jsonl"
    lines = [
        # every sample the same partial match: flat at a value between min and max
        {"messages": msgs, "reference_answer": "abcdefghij", "samples": ["abc", "abc", "abc"]},
        {"messages": msgs, "reference_answer": "xyz", "samples": ["xyz", "q", "xy"]},
    ]
    data.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    out = tmp_path / "r.json"
    proc = cli(
        "check", str(grader), str(data), "--no-probes", "--max-flat-group-share", "0.4", "--json", str(out)
    )
    report = json.loads(out.read_text())
    assert report["samples"] == 6 and report["groups"] == 2
    flat = report["flat_groups"]
    assert flat["flat_share"] == 0.5 and flat["all_min_share"] == 0.0 and flat["all_max_share"] == 0.0
    assert flat["flat_other_share"] == 0.5
    assert proc.returncode == 1 and "score the same on every sample" in proc.stdout.replace("\n", " ")


# -- validate --data --------------------------------------------------------------------------------


def _bad_train(tmp_path: Path) -> Path:
    rows = rows_of(JOB_DIR / "train.jsonl")
    rows[1]["answr"] = rows[1].pop("answer")  # line 2: misspelt key
    rows[2]["key_quantity"] = {"value": "10"}  # line 3: type changes
    rows[3]["messages"] = [*rows[3]["messages"], {"role": "assistant", "content": "a"}] * 1
    rows[3]["messages"].append({"role": "assistant", "content": "b"})  # line 4: ends in assistant
    rows.append(dict(rows[0]))  # line 5: duplicate of line 1
    rows.append(rows_of(JOB_DIR / "valid.jsonl")[1])  # line 6: also in valid (line 2)
    rows.append({"messages": "hello", "answer": "1", "key_quantity": "1"})  # line 7: messages not a list
    path = tmp_path / "train.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n{not json\n")  # line 8
    return path


def test_validate_data_finds_each_problem_with_row_numbers(tmp_path: Path) -> None:
    train = _bad_train(tmp_path)
    findings = check_dataset(load_spec(JOB), [train, JOB_DIR / "valid.jsonl"])
    by = {(f.level, f.path or f.message[:20]): f for f in findings}
    missing = by[("error", "answer")]
    assert missing.rows == [2] and "did you mean `answr`" in missing.message
    assert by[("warning", "key_quantity")].rows == [3]
    ends = [f for f in findings if "end in a user turn" in f.message]
    assert ends and ends[0].rows == [4]
    assert [
        f.rows for f in findings if "not a non-empty list" in f.message or "must be a non-empty" in f.message
    ] == [[7]]
    dup = [f for f in findings if "repeats an earlier row" in f.message]
    assert dup and dup[0].rows == [5] and dup[0].level == "warning"
    leak = [f for f in findings if "leakage" in f.message]
    assert leak and leak[0].level == "error" and leak[0].rows == [2] and str(train) in leak[0].message
    assert [f.rows for f in findings if "not a JSON object row" in f.message] == [[8]]


def test_validate_data_cli_json_and_exit_codes(tmp_path: Path) -> None:
    ok = cli(
        "validate",
        str(JOB_DIR / "job.json"),
        "--data",
        str(JOB_DIR / "train.jsonl"),
        "--data",
        str(JOB_DIR / "valid.jsonl"),
    )
    assert ok.returncode == 0, ok.stderr
    bad = cli("validate", str(JOB_DIR / "job.json"), "--data", str(_bad_train(tmp_path)), "--json")
    assert bad.returncode == 1
    findings = json.loads(bad.stdout)
    assert {f["level"] for f in findings} == {"error", "warning"}
    assert any(f["path"] == "answer" and f["rows"] == [2] for f in findings)


def test_validate_data_sees_item_keys_a_python_grader_reads(tmp_path: Path) -> None:
    source = (
        "def grade(sample, item):\n"
        "    ref = item['reference']['value']\n"
        "    bonus = item.get('bonus')\n"
        "    return float(sample['output_text'] == ref)\n"
    )
    spec = load_spec({"type": "python", "name": "p", "source": source})
    data = tmp_path / "d.jsonl"
    msgs = [{"role": "user", "content": "q"}]
    data.write_text(
        "\n".join(
            json.dumps(r)
            for r in (
                {"messages": msgs, "reference": {"value": "1"}, "bonus": 1},
                {"messages": msgs, "reference": {"valeu": "1"}},
            )
        )
        + "\n"
    )
    findings = check_dataset(spec, [data])
    (required,) = [f for f in findings if f.path == "reference.value"]
    assert (
        required.level == "error"
        and required.rows == [2]
        and "did you mean `reference.valeu`" in required.message
    )
    (optional,) = [f for f in findings if f.path == "bonus"]
    assert optional.level == "warning" and optional.rows == [2]


def test_validate_data_names_bad_tools_and_rows_a_tool_grader_cannot_use(tmp_path: Path) -> None:
    calls = load_spec(EXAMPLES / "function_call" / "grader.json")  # reads sample.output_tools
    tool = {"type": "function", "function": {"name": "get_time"}}
    msgs = [{"role": "user", "content": "q"}]
    call = {"name": "get_time", "arguments": {}}
    data = tmp_path / "d.jsonl"
    rows = (
        {"messages": msgs, "tools": [tool], "expected_call": call},
        {"messages": msgs, "expected_call": call},  # no tools: the model cannot call one
        {"messages": msgs, "tools": ["get_time"], "expected_call": call},
        {"messages": msgs, "tools": {"get_time": tool}, "expected_call": call},
    )
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    found = [(f.level, f.rows, f.message) for f in check_dataset(calls, [data]) if f.path == "tools"]
    for level, rows_named, start in (
        ("error", [3], "tools[0] is a str; a tool is {"),
        ("error", [4], "`tools` must be a list of tools, got dict"),
        (
            "warning",
            [2],
            "the grader reads the model's tool calls ({{ sample.output_tools[0].function.name }})",
        ),
    ):
        assert any(f[:2] == (level, rows_named) and f[2].startswith(start) for f in found), (start, found)
    # A grader that reads no call does not need tools: the rows without them are fine.
    text_only = load_spec(EXAMPLES / "math_answer" / "grader.json")
    assert not [f for f in check_dataset(text_only, [data]) if "offer no `tools`" in f.message]


def test_model_grader_validates_offline_and_require_judge_fails(tmp_path: Path) -> None:
    grader = tmp_path / "label.json"
    grader.write_text(
        json.dumps(
            {
                "type": "label_model",
                "name": "l",
                "model": "gpt-4o-2024-08-06",
                "labels": ["good", "bad"],
                "passing_labels": ["good"],
                "sampling_params": {"temperature": 0.0, "seed": 1},
                "input": [{"role": "user", "content": "{{sample.output_text}}"}],
            }
        )
    )
    env_cli = [sys.executable, "-m", "rftgrade", "validate", str(grader)]
    env = {
        k: v for k, v in __import__("os").environ.items() if not k.startswith(("OPENAI_", "RFTGRADE_MODELS"))
    }
    env["COLUMNS"] = "200"
    proc = subprocess.run(env_cli, capture_output=True, text=True, env=env, timeout=60, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "fail until a judge is routed" in proc.stderr
    proc = subprocess.run(
        [*env_cli, "--require-judge"], capture_output=True, text=True, env=env, timeout=60, cwd=tmp_path
    )
    assert proc.returncode == 1 and "no backend serves model" in proc.stderr


def test_typo_in_a_key_fails_every_face(tmp_path: Path) -> None:
    typo = {**string_check(), "refrence": "x"}
    path = tmp_path / "g.json"
    path.write_text(json.dumps(typo))
    proc = cli("run", str(path), "--sample", "a", "--item", "{}")
    assert proc.returncode == 1 and "refrence" in proc.stderr and "did you mean" in proc.stderr
    with pytest.raises(GraderValidationError):
        rftgrade.Grader(typo)


def test_library_run_batch_takes_rft_rows_as_they_are() -> None:
    grader = rftgrade.Grader(JOB_DIR / "job.json")
    data = rows_of(JOB_DIR / "data.jsonl")
    results = grader.run_batch([{k: v for k, v in r.items() if k != "expected_reward"} for r in data])
    assert [r.reward for r in results] == [r["expected_reward"] for r in data]
    (missing,) = grader.run_batch([rows_of(JOB_DIR / "train.jsonl")[0]])
    assert missing.errors.sample_parse_error and "rftgrade eval" in missing.error_messages[0]


def test_server_validate_and_run_reject_unknown_keys_with_400() -> None:
    import httpx

    from rftgrade.server import ServerConfig

    from .server.conftest import running_server

    typo = {**string_check(), "refrence": "{{item.answer}}"}
    with running_server(ServerConfig()) as url:
        for path, body in (
            ("/v1/fine_tuning/alpha/graders/validate", {"grader": typo}),
            ("/v1/fine_tuning/alpha/graders/run", {"grader": typo, "model_sample": "x", "item": {}}),
        ):
            response = httpx.post(url + path, json=body, timeout=30)
            assert response.status_code == 400, (path, response.text)
            assert "refrence" in response.text and "did you mean" in response.text


@pytest.mark.parametrize("form", sorted(FORMS))
def test_cli_run_and_validate_take_every_form(form: str, tmp_path: Path) -> None:
    path = tmp_path / f"{form}.json"
    path.write_text(json.dumps(FORMS[form]))
    validated = cli("validate", str(path))
    assert validated.returncode == 0, validated.stderr
    if form != "grader":
        assert "read " in validated.stderr and " as " in validated.stderr
    sample = '{"reasoning": "3 x 12 = 36", "answer": "31"}'
    item = {"answer": "31", "key_quantity": "36"}
    proc = cli("run", str(path), "--sample", sample, "--item", json.dumps(item), "--json")
    assert proc.returncode == 0, proc.stderr
    expected = 0.0 if form == "testing_criteria" else 1.0  # that form is a plain string_check on item.answer
    assert json.loads(proc.stdout)["reward"] == expected


def test_serve_preloads_a_job_file() -> None:
    import httpx

    from rftgrade.server import ServerConfig

    from .server.conftest import running_server

    with running_server(ServerConfig(graders={"math": str(JOB_DIR / "job.json")})) as url:
        data = rows_of(JOB_DIR / "data.jsonl")
        rows = [dict(zip(("item", "sample"), split_row(r), strict=True)) for r in data]
        response = httpx.post(url + "/v1/grade", json={"grader": "math", "rows": rows}, timeout=60)
        assert response.status_code == 200, response.text
        assert [r["reward"] for r in response.json()["results"]] == [r["expected_reward"] for r in data]


def test_trainer_adapter_takes_the_job_file_and_rft_columns() -> None:
    import asyncio

    from rftgrade.integrations import trl as trl_adapter

    reward = trl_adapter.make_reward_function(str(JOB_DIR / "job.json"))
    assert reward.__name__ == "math_answer"  # type: ignore[attr-defined]
    rows = rows_of(JOB_DIR / "train.jsonl")[:2]
    prompts = [r["messages"] for r in rows]
    completions = ['{"reasoning": "3 x 12 = 36", "answer": "31"}', '{"reasoning": "x", "answer": "0"}']
    columns = {k: [r[k] for r in rows] for k in ("answer", "key_quantity")}  # the dataset's columns
    rewards = asyncio.run(
        reward(prompts=prompts, completions=completions, completion_ids=[[1], [2]], **columns)
    )
    assert rewards == [1.0, 0.0]
