"""Grader specs: OpenAI's JSON in, the same JSON out, and errors that name the path."""

from __future__ import annotations

import json
import warnings
from typing import Any

import pytest
from openai.types import graders as sdk
from pydantic import TypeAdapter

import rftgrade
from rftgrade import GraderValidationError, load_spec

from .conftest import EXAMPLES, string_check

GUIDE_MULTI = {
    "type": "multi",
    "graders": {
        "name": {
            "name": "name_grader",
            "type": "text_similarity",
            "input": "{{sample.output_json.name}}",
            "reference": "{{item.name}}",
            "evaluation_metric": "fuzzy_match",
            "pass_threshold": 0.9,
        },
        "email": {
            "name": "email_grader",
            "type": "string_check",
            "input": "{{sample.output_json.email}}",
            "reference": "{{item.email}}",
            "operation": "eq",
        },
    },
    "calculate_output": "(name + email) / 2",
}

SCORE_MODEL = {
    "type": "score_model",
    "name": "Example score model grader",
    "input": [
        {
            "role": "user",
            "content": [
                {
                    "type": "input_text",
                    "text": "Score how close the reference answer is to the model answer. "
                    "Score 1.0 if they are the same and 0.0 if different. Reference: {{item.reference_answer}}. "
                    "Model answer: {{sample.output_text}}",
                },
                {
                    "type": "input_image",
                    "image_url": "https://example.com/dog.png",
                    "detail": "high",
                    "file_id": None,
                },
            ],
        },
    ],
    "model": "gpt-5-mini",
    "sampling_params": {
        "temperature": 1,
        "top_p": 1,
        "seed": 42,
        "max_completions_tokens": 32768,
        "reasoning_effort": "medium",
    },
    "range": [0, 1],
    "pass_threshold": 0.75,
}

LABEL_MODEL = {
    "type": "label_model",
    "name": "policy",
    "model": "gpt-4o-2024-08-06",
    "input": [
        {"role": "developer", "content": "Classify the reply as compliant or violating."},
        {"role": "user", "content": "{{ sample.output_text }}", "type": "message"},
    ],
    "labels": ["compliant", "violating"],
    "passing_labels": ["compliant"],
}

PYTHON = {
    "type": "python",
    "name": "py",
    "image_tag": "2025-05-08",
    "source": "def grade(sample, item):\n    return 1.0\n",
}

TEXT_SIM = {
    "type": "text_similarity",
    "name": "ts",
    "input": "{{ sample.output_text }}",
    "reference": "{{ item.ref }}",
    "evaluation_metric": "bleu",
}

AUDIO = {
    "type": "score_model",
    "name": "audio",
    "model": "gpt-audio",
    "input": [
        {
            "role": "user",
            "content": [
                {"type": "input_audio", "input_audio": {"data": "{{item.audio_clip_b64}}", "format": "wav"}}
            ],
        }
    ],
}

SDK_TYPES: dict[str, Any] = {
    "string_check": sdk.StringCheckGrader,
    "text_similarity": sdk.TextSimilarityGrader,
    "python": sdk.PythonGrader,
    "score_model": sdk.ScoreModelGrader,
    "label_model": sdk.LabelModelGrader,
}

ALL = [string_check(), TEXT_SIM, PYTHON, SCORE_MODEL, LABEL_MODEL, AUDIO, {**GUIDE_MULTI, "name": "guide"}]


@pytest.mark.parametrize("data", ALL, ids=lambda d: d["type"] + ":" + d.get("name", ""))
def test_round_trip_is_lossless(data: dict[str, Any]) -> None:
    spec = load_spec(data)
    written = rftgrade.grader_to_dict(spec)
    assert rftgrade.grader_to_dict(load_spec(written)) == written

    # Everything the user wrote survives (None values are dropped on write).
    def strip_none(x: Any) -> Any:
        if isinstance(x, dict):
            return {k: strip_none(v) for k, v in x.items() if v is not None}
        if isinstance(x, list):
            return [strip_none(v) for v in x]
        return x

    assert written == strip_none(data)


@pytest.mark.parametrize("data", ALL, ids=lambda d: d["type"] + ":" + d.get("name", ""))
def test_written_json_parses_with_openai_sdk_types(data: dict[str, Any]) -> None:
    written = rftgrade.grader_to_dict(load_spec(data))
    if written["type"] == "multi":
        # The SDK types `graders` as one grader (openai-python PR #3918 restores the map):
        # each named sub-grader must parse with its SDK type, and one-grader form too.
        for sub in written["graders"].values():
            TypeAdapter(SDK_TYPES[sub["type"]]).validate_python(sub)
        one = {**written, "graders": next(iter(written["graders"].values()))}
        TypeAdapter(sdk.MultiGrader).validate_python(one)
        return
    parsed = TypeAdapter(SDK_TYPES[written["type"]]).validate_python(written)
    assert parsed.type == written["type"]
    # ...and the SDK's own dump loads back here unchanged.
    again = load_spec(parsed.model_dump(mode="json", exclude_none=True, by_alias=True))
    assert again.type == written["type"]


def test_guide_examples_from_seed_page_parse() -> None:
    for folder in EXAMPLES.iterdir():
        if (folder / "grader.json").is_file():
            assert rftgrade.validate(folder / "grader.json").ok, folder


def test_multi_without_name_is_accepted_as_in_the_guide() -> None:
    assert load_spec(GUIDE_MULTI).type == "multi"


def test_pass_threshold_and_file_id_tolerated() -> None:
    spec = load_spec(SCORE_MODEL)
    assert spec.pass_threshold == 0.75
    assert rftgrade.validate(SCORE_MODEL).ok


def test_unknown_keys_are_errors_with_path_and_suggestion() -> None:
    report = rftgrade.validate({**string_check(), "operaton": "eq"})
    assert not report.ok
    (problem,) = report.problems
    assert problem.path == "operaton" and "did you mean `operation`" in problem.message


def test_unknown_key_deep_in_a_multi_is_an_error_at_its_path() -> None:
    sub = {
        "type": "score_model",
        "name": "j",
        "model": "m",
        "rnage": [1, 10],
        "input": [{"role": "user", "content": "rate {{sample.output_text}}"}],
    }
    with pytest.raises(GraderValidationError) as info:
        load_spec({"type": "multi", "graders": {"judge": sub}, "calculate_output": "judge"})
    (problem,) = info.value.problems
    assert problem.path == "graders.judge.rnage"
    assert "did you mean `range`" in problem.message


def test_every_field_openai_graders_carry_is_accepted() -> None:
    label = {
        "type": "label_model",
        "name": "l",
        "model": "m",
        "labels": ["a", "b"],
        "passing_labels": ["a"],
        "sampling_params": {
            "temperature": 0.2,
            "top_p": 1,
            "seed": 1,
            "max_completions_tokens": 50,
            "reasoning_effort": "low",
        },
        "pass_threshold": 0.5,
        "input": [
            {
                "type": "message",
                "role": "user",
                "content": [
                    {"type": "input_text", "text": "{{sample.output_text}}"},
                    {"type": "input_image", "image_url": "{{item.url}}", "detail": "low", "file_id": None},
                    {"type": "input_audio", "input_audio": {"data": "{{item.audio}}", "format": "wav"}},
                ],
            }
        ],
    }
    python = {
        "type": "python",
        "name": "p",
        "source": "def grade(s, i): return 1.0",
        "image_tag": "2025-05-08",
        "pass_threshold": 1.0,
    }
    for spec in (label, python):
        report = rftgrade.validate(spec)
        assert report.ok, report.problems


def test_misspelt_operation_names_path_and_suggests() -> None:
    with pytest.raises(GraderValidationError) as info:
        load_spec(string_check("neq"))
    (problem,) = info.value.problems
    assert problem.path == "operation"
    assert "did you mean `ne`" in problem.message
    assert "eq, ne, like, ilike" in problem.message


def test_unknown_type_lists_valid_types_with_path() -> None:
    data = {**GUIDE_MULTI, "graders": {"a": {**string_check(), "type": "string_chek"}}}
    with pytest.raises(GraderValidationError) as info:
        load_spec(data)
    (problem,) = info.value.problems
    assert problem.path == "graders.a.type"
    assert "did you mean `string_check`" in problem.message
    assert "text_similarity" in problem.message


def test_misspelt_metric_in_nested_grader() -> None:
    data = json.loads(json.dumps(GUIDE_MULTI))
    data["graders"]["name"]["evaluation_metric"] = "rouge-l"
    problems = rftgrade.validate(data).problems
    assert [p.path for p in problems] == ["graders.name.evaluation_metric"]
    assert "rouge_l" in problems[0].message


def test_missing_field_points_at_misspelling() -> None:
    data = string_check()
    data["refrence"] = data.pop("reference")
    (problem,) = rftgrade.validate(data).problems
    assert problem.path == "reference" and "refrence" in problem.message


def test_nested_multi_rejected() -> None:
    data = {**GUIDE_MULTI, "graders": {"inner": {**GUIDE_MULTI, "name": "inner"}}}
    problems = rftgrade.validate(data).problems
    assert problems and "cannot be nested" in problems[0].message


def test_multi_graders_list_rejected_with_fix() -> None:
    problems = rftgrade.validate({**GUIDE_MULTI, "graders": [string_check()]}).problems
    assert "not a list" in problems[0].message


def test_single_grader_form_accepted_with_deprecation() -> None:
    data = {"type": "multi", "name": "m", "graders": string_check(name="exact"), "calculate_output": "exact"}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        spec = load_spec(data)
    assert list(spec.graders) == ["exact"]  # type: ignore[union-attr]
    assert any(issubclass(w.category, DeprecationWarning) and "map" in str(w.message) for w in caught)
    with pytest.warns(DeprecationWarning, match="map"):  # compiling it warns the same way
        assert rftgrade.Grader(data).run("x", {"answer": "x"}).reward == 1.0


def test_label_model_passing_labels_subset() -> None:
    problems = rftgrade.validate({**LABEL_MODEL, "passing_labels": ["ok"]}).problems
    assert "passing_labels" in problems[0].message


def test_score_model_range_checked() -> None:
    problems = rftgrade.validate({**SCORE_MODEL, "range": [1, 0]}).problems
    assert problems[0].path == "range"


def test_every_problem_reported_at_once() -> None:
    data = {
        "type": "multi",
        "name": "m",
        "calculate_output": "a + nope",
        "graders": {
            "a": string_check(input="{{ smaple.output_text }}"),
            "p": {"type": "python", "name": "p", "source": "def grade(x):\n  return 1"},
        },
    }
    problems = rftgrade.validate(data).problems
    paths = sorted(p.path for p in problems)
    assert paths == ["calculate_output", "graders.a.input", "graders.p.source"]


def test_request_body_wrapper_accepted(tmp_path: Any) -> None:
    path = tmp_path / "g.json"
    path.write_text(json.dumps({"grader": string_check()}))
    assert load_spec(path).type == "string_check"


def test_bad_json_file_reports_line(tmp_path: Any) -> None:
    path = tmp_path / "g.json"
    path.write_text('{"type": "string_check",\n "name": }')
    (problem,) = rftgrade.validate(path).problems
    assert "line 2" in problem.message


def test_each_type_is_validated_by_its_own_model_and_an_unknown_type_by_the_union() -> None:
    from rftgrade._load import _MODELS
    from rftgrade._specs import GRADER_TYPES

    assert sorted(_MODELS) == sorted(GRADER_TYPES)
    with pytest.raises(GraderValidationError) as info:
        load_spec({**string_check(), "type": "string_chek"})  # not a key of _MODELS: the union says why
    (problem,) = info.value.problems
    assert problem.path == "type" and "did you mean `string_check`" in problem.message
