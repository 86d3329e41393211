"""Results have OpenAI's response shape, and every core error flag can be provoked."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import rftgrade
from rftgrade import ERROR_FLAGS, Grader, GradeResult
from rftgrade._graders.model import parse_label, parse_score

from .conftest import constant_python, score_model, string_check


def test_fourteen_flags_in_openai_order() -> None:
    assert len(ERROR_FLAGS) == 14
    body = Grader(string_check()).run("a", {"answer": "a"}).to_dict()
    assert list(body["metadata"]["errors"]) == list(ERROR_FLAGS)
    assert set(body["metadata"]) >= {
        "name",
        "type",
        "errors",
        "execution_time",
        "scores",
        "token_usage",
        "sampled_model_name",
    }


def test_response_parses_with_openai_sdk() -> None:
    from openai.types.fine_tuning.alpha import GraderRunResponse

    body = Grader(string_check()).run("a", {"answer": "a"}).to_dict()
    parsed = GraderRunResponse.model_validate(body)
    assert parsed.reward == 1.0 and parsed.metadata.errors.sample_parse_error is False


def multi(**graders: dict[str, Any]) -> dict[str, Any]:
    return {"type": "multi", "name": "m", "graders": graders, "calculate_output": " + ".join(graders)}


PY = constant_python(1.0)
SCORE = score_model("judge", "s")


def provoke(flag: str) -> rftgrade.GradeResult:
    if flag == "sample_parse_error":
        return Grader(string_check(input="{{ sample.output_json.x }}")).run("not json", {"answer": "a"})
    if flag == "invalid_variable_error":
        return Grader(string_check()).run("a", {})
    if flag == "other_error":
        return Grader({**multi(a=string_check()), "calculate_output": "1 / a"}).run("b", {"answer": "a"})
    if flag == "truncated_observation_error":
        return Grader(string_check("like"), max_sample_chars=10).run("a" * 100, {"answer": "a"})
    if flag in ("python_grader_server_error", "python_grader_server_error_type"):
        return Grader(PY).run("a", {})  # no sandbox configured
    if flag in ("model_grader_server_error", "model_grader_server_error_details"):
        return Grader(SCORE).run("a", {})  # no judge configured
    raise KeyError(flag)


@pytest.mark.parametrize(
    "flag",
    [
        "sample_parse_error",
        "invalid_variable_error",
        "other_error",
        "truncated_observation_error",
        "python_grader_server_error",
        "model_grader_server_error",
    ],
)
def test_core_flags(flag: str) -> None:
    result = provoke(flag)
    assert getattr(result.errors, flag) is True
    assert result.error_messages
    body = result.to_dict()
    assert body["metadata"]["errors"][flag] is True
    if flag != "truncated_observation_error":
        assert body["reward"] == 0.0


def test_unavailable_executors_say_so_plainly() -> None:
    py = Grader(PY).run("a", {})
    assert py.errors.python_grader_server_error_type == "sandbox_unavailable"
    judged = Grader(SCORE).run("a", {})
    assert "judge_unavailable" in (judged.errors.model_grader_server_error_details or "")


@pytest.mark.parametrize(
    ("text", "expected", "error"),
    [
        ('{"steps": [], "result": 0.7}', 0.7, None),
        ('{"result": 7}', 1.0, None),  # clamped to range
        ('{"result": -3}', 0.0, None),
        ('Sure! ```json\n{"result": 0.25, "steps": []}\n```', 0.25, None),
        (
            'Reasoning first. {"steps": [{"description": "a", "conclusion": "b"}], "result": "0.5"} done',
            0.5,
            None,
        ),
        ("I think it deserves a high score", None, "no numeric"),
        ('{"result": "high"}', None, "no numeric"),
        ('{"result": NaN}', None, "no numeric"),
        ("{broken json", None, "no numeric"),
    ],
)
def test_score_parsing(text: str, expected: float | None, error: str | None) -> None:
    score, _, problem = parse_score(text, 0.0, 1.0)
    if expected is None:
        assert score is None and problem is not None and error in problem
    else:
        assert score == pytest.approx(expected) and problem is None and math.isfinite(score)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"result": "compliant"}', "compliant"),
        ("Violating", "violating"),
        ("The answer is clearly violating.", "violating"),
        ("compliant or violating?", None),
        ("unsure", None),
        ('{"result": "non-compliant"}', None),
    ],
)
def test_label_parsing(text: str, expected: str | None) -> None:
    label, error = parse_label(text, ["compliant", "violating"])
    assert label == expected
    assert (error is None) == (expected is not None)


@pytest.mark.parametrize("stdout", ["plain", "bad \udc80 surrogate"])  # the second takes the stdlib path
def test_a_server_answer_is_the_results_json(stdout: str) -> None:
    # The server writes results with their clean error flags pre-encoded; the
    # bytes must read back as to_dict() on orjson's path and on the fallback.
    import json

    from rftgrade._json import dumps
    from rftgrade._result import GradeResult

    clean = GradeResult(0.5, "g", "python", execution_time=0.25)
    clean.scores["stdout"] = stdout
    failed = GradeResult(1.0, "g", "python").fail("python_grader_runtime_error", "boom")
    answer = dumps({"results": [clean.to_answer(), failed.to_answer(), clean.to_answer()]})
    expected = {"results": [clean.to_dict(), failed.to_dict(), clean.to_dict()]}
    assert json.loads(answer) == json.loads(json.dumps(expected))
    assert (
        clean.to_dict()["metadata"]["errors"] is not clean.to_dict()["metadata"]["errors"]
    )  # callers own it


@settings(max_examples=300, deadline=None)
@given(
    name=st.text(max_size=12),
    reward=st.floats(allow_nan=True, allow_infinity=True) | st.integers(-5, 5),
    duration=st.floats(min_value=0, max_value=1e6),
    scores=st.dictionaries(
        st.text(max_size=5), st.integers() | st.text(max_size=5) | st.floats(allow_nan=False)
    ),
    flag=st.sampled_from([None, "sample_parse_error", "python_grader_runtime_error"]),
)
def test_answer_json_is_the_encoded_answer(
    name: str, reward: float, duration: float, scores: dict[str, Any], flag: str | None
) -> None:
    from rftgrade._json import dumps

    result = GradeResult(reward, name, "python", None, duration, scores or None)
    if flag is not None:
        result.fail(flag, "why")
    # Marker-like names must not confuse the constant parts (they are checked).
    marked = GradeResult(reward, "123456.25 246912.5", "python", None, duration, scores or None)
    for r in (result, marked):
        assert r.to_answer_json() == dumps(r.to_answer())
