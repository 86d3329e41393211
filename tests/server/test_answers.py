"""The server's full answers (``GradeResult.to_answer`` + ``rftgrade._json.dumps``)
read back exactly as ``GradeResult.to_dict`` (OpenAI's ``GraderRunResponse``) for
every kind of result, on orjson's path and on the standard library's."""

from __future__ import annotations

import json
import math

import pytest

from rftgrade._json import dumps
from rftgrade._result import GradeResult, TokenUsage


def results() -> list[GradeResult]:
    clean = GradeResult(0.5, "g", "python", execution_time=0.25, scores={"isolation": "worker (x)"})
    empty_scores = GradeResult(1.0, "g", "string_check", scores={})
    failed = GradeResult(1.0, "g", "python").fail(
        "python_grader_runtime_error", "boom", python_grader_runtime_error_details="Traceback"
    )
    nan = GradeResult(math.nan, "g", "python", execution_time=1e-7)
    model = GradeResult(
        0.7,
        "judge",
        "score_model",
        token_usage=TokenUsage(10, 5, 15, 2),
        sampled_model_name="gpt-4o",
        token_usage_per_model={"gpt-4o": TokenUsage(10, 5, 15, 2)},
    )
    multi = GradeResult(0.3, "m", "multi", sub_rewards={"a": 1.0, "b": 0.0}, scores={"a": {"x": 1}})
    return [clean, empty_scores, failed, nan, model, multi]


@pytest.mark.parametrize("surrogate", [False, True])  # True: the stdlib fallback encodes it
def test_full_answers_read_back_as_to_dict(surrogate: bool) -> None:
    batch = results()
    if surrogate:
        batch[0].scores["stdout"] = "bad \udc80"
    answer = dumps({"object": "list", "results": [r.to_answer() for r in batch]})
    expected = json.loads(json.dumps({"object": "list", "results": [r.to_dict() for r in batch]}))
    assert json.loads(answer) == expected
    assert json.loads(answer)["results"][3]["reward"] == 0.0  # not NaN, which is no JSON
    assert list(json.loads(answer)["results"][0]) == [
        "reward",
        "metadata",
        "sub_rewards",
        "model_grader_token_usage_per_model",
    ]


def test_to_dict_is_the_callers_to_change() -> None:
    first, second = GradeResult(1.0, "g", "python"), GradeResult(1.0, "g", "python")
    body = first.to_dict()
    body["metadata"]["errors"]["other_error"] = True
    body["sub_rewards"]["x"] = 1.0
    assert second.to_dict()["metadata"]["errors"]["other_error"] is False
    assert json.loads(dumps(second.to_answer())) == json.loads(json.dumps(second.to_dict()))
