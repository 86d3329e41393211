"""score_model / label_model through the real openai client against a loopback server."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import rftgrade
from rftgrade import Grader, GraderValidationError
from rftgrade.judge import BatchScorer, ModelRoute, RoutingConfig
from rftgrade.testing import FakeJudgeServer


def score_spec(**kw: Any) -> dict[str, Any]:
    return {
        "type": "score_model",
        "name": "judge",
        "model": "judge-1",
        "input": [
            {"role": "system", "content": "Grade the answer."},
            {
                "role": "user",
                "content": [
                    {"type": "input_text", "text": "{{ item.directive }} answer: {{ sample.output_text }}"}
                ],
            },
        ],
        **kw,
    }


LABEL = {
    "type": "label_model",
    "name": "policy",
    "model": "judge-1",
    "input": [
        {"role": "developer", "content": "Classify."},
        {"role": "user", "content": "{{ item.directive }}"},
    ],
    "labels": ["compliant", "violating"],
    "passing_labels": ["compliant"],
}


@pytest.fixture(scope="module")
def server() -> Iterator[FakeJudgeServer]:
    with FakeJudgeServer() as srv:
        yield srv


def scorer_for(server: FakeJudgeServer, **route: Any) -> BatchScorer:
    routing = RoutingConfig([ModelRoute("*", base_url=server.base_url, **route)], "test")
    return BatchScorer(routing, backoff=0.01)


def run(
    spec: dict[str, Any], server: FakeJudgeServer, rows: list[tuple[str, dict[str, Any]]], **route: Any
) -> list[rftgrade.GradeResult]:
    grader = Grader(spec, judge=scorer_for(server, **route))
    try:
        return grader.run_batch(rows)
    finally:
        grader.close()


def test_score_is_read_clamped_and_usage_reported(server: FakeJudgeServer) -> None:
    ok, high, low = run(
        score_spec(),
        server,
        [
            ("a", {"directive": "SCORE=0.7"}),
            ("b", {"directive": "SCORE=7"}),
            ("c", {"directive": "SCORE=-2"}),
        ],
    )
    assert (ok.reward, high.reward, low.reward) == (0.7, 1.0, 0.0)
    assert ok.ok and ok.scores["steps"][0]["conclusion"] == "graded"
    body = ok.to_dict()
    per_model = body["model_grader_token_usage_per_model"]["judge-1"]
    assert per_model["prompt_tokens"] > 0
    assert body["metadata"]["token_usage"] == per_model["total_tokens"] > 0
    # The answer passes the openai SDK's own response type (token_usage is an int there).
    from openai.types.fine_tuning.alpha import GraderRunResponse

    for result in (ok, high, low):
        parsed = GraderRunResponse.model_validate(result.to_dict())
        assert parsed.metadata.token_usage == result.token_usage.total_tokens  # type: ignore[union-attr]
    assert body["metadata"]["sampled_model_name"] == "judge-1"


def test_custom_range(server: FakeJudgeServer) -> None:
    (result,) = run(score_spec(range=[1, 10]), server, [("a", {"directive": "SCORE=7"})])
    assert result.reward == 7.0


def test_sampling_params_map_onto_the_request(server: FakeJudgeServer) -> None:
    params = {
        "temperature": 0.2,
        "top_p": 0.9,
        "seed": 7,
        "max_completions_tokens": 99,
        "reasoning_effort": "low",
    }
    run(score_spec(sampling_params=params), server, [("sampling", {"directive": "SCORE=0.5"})])
    body = next(r for r in reversed(server.requests) if "sampling" in str(r["messages"]))
    assert (
        body["temperature"],
        body["top_p"],
        body["seed"],
        body["max_completion_tokens"],
        body["reasoning_effort"],
    ) == (0.2, 0.9, 7, 99, "low")
    schema = body["response_format"]["json_schema"]
    assert schema["strict"] is True and schema["schema"]["required"] == ["steps", "result"]


def test_parse_error_refusal_and_server_error_flags(server: FakeJudgeServer) -> None:
    parse, refusal, failed, fine = run(
        score_spec(),
        server,
        [
            ("a", {"directive": "MODE:malformed"}),
            ("b", {"directive": "MODE:refuse"}),
            ("c", {"directive": "MODE:fail"}),
            ("d", {"directive": "SCORE=0.4"}),
        ],
        max_retries=1,
    )
    assert parse.errors.model_grader_parse_error and parse.reward == 0.0
    assert refusal.errors.model_grader_refusal_error and refusal.reward == 0.0
    assert failed.errors.model_grader_server_error and "500" in (
        failed.errors.model_grader_server_error_details or ""
    )
    assert fine.reward == 0.4 and fine.ok


def test_429_and_500_are_retried_then_succeed(server: FakeJudgeServer) -> None:
    results = run(
        score_spec(),
        server,
        [
            ("a", {"directive": "MODE:429:k429:2 SCORE=0.9"}),
            ("b", {"directive": "MODE:500:k500:1 SCORE=0.3"}),
        ],
    )
    assert [r.reward for r in results] == [0.9, 0.3] and all(r.ok for r in results)
    assert server.calls["k429"] == 3 and server.calls["k500"] == 2


def test_slow_judge_times_out_without_holding_the_batch(server: FakeJudgeServer) -> None:
    start = time.perf_counter()
    slow, fast = run(
        score_spec(),
        server,
        [("a", {"directive": "MODE:slow:5 SCORE=1"}), ("b", {"directive": "SCORE=0.6"})],
        timeout=1.0,
    )
    assert time.perf_counter() - start < 4
    assert slow.errors.model_grader_server_error and "timeout" in (
        slow.errors.model_grader_server_error_details or ""
    )
    assert fast.reward == 0.6


def test_identical_prompts_are_sent_once_and_cached(server: FakeJudgeServer) -> None:
    grader = Grader(score_spec(), judge=scorer_for(server))
    before = server.calls["total"]
    rows = [("same", {"directive": "SCORE=0.25 dedupe"})] * 20
    try:
        assert [r.reward for r in grader.run_batch(rows)] == [0.25] * 20
        assert server.calls["total"] - before == 1
        grader.run_batch(rows)
        assert server.calls["total"] - before == 1
    finally:
        grader.close()


def test_disk_cache_survives_a_new_scorer(server: FakeJudgeServer, tmp_path: Path) -> None:
    routing = RoutingConfig([ModelRoute("*", base_url=server.base_url)], "test")
    rows = [("disk", {"directive": "SCORE=0.8 disk-cache"})]
    first = Grader(score_spec(), judge=BatchScorer(routing, cache_path=tmp_path / "c.sqlite"))
    assert first.run_batch(rows)[0].reward == 0.8
    first.close()
    before = server.calls["total"]
    second = Grader(score_spec(), judge=BatchScorer(routing, cache_path=tmp_path / "c.sqlite"))
    assert second.run_batch(rows)[0].reward == 0.8
    second.close()
    assert server.calls["total"] == before


def test_fallback_to_text_when_server_lacks_structured_output() -> None:
    with FakeJudgeServer(structured_output=False) as plain:
        (result,) = run(score_spec(), plain, [("a", {"directive": "SCORE=0.55"})])
        assert result.reward == 0.55 and result.ok
        assert "response_format" not in plain.requests[-1]


def test_label_model(server: FakeJudgeServer) -> None:
    passing, failing, unknown = run(
        LABEL,
        server,
        [
            ("a", {"directive": "LABEL=compliant"}),
            ("b", {"directive": "LABEL=violating"}),
            ("c", {"directive": "LABEL=maybe"}),
        ],
    )
    assert (passing.reward, failing.reward) == (1.0, 0.0)
    assert passing.scores["label"] == "compliant" and failing.scores["label"] == "violating" and failing.ok
    assert unknown.errors.model_grader_parse_error
    enum = server.requests[-1]["response_format"]["json_schema"]["schema"]["properties"]["result"]["enum"]
    assert enum == ["compliant", "violating"]


def test_label_model_inside_multi_with_python_free_parts(server: FakeJudgeServer) -> None:
    spec = {
        "type": "multi",
        "name": "m",
        "calculate_output": "0.5 * policy + 0.5 * quality",
        "graders": {"policy": LABEL, "quality": score_spec()},
    }
    (result,) = run(spec, server, [("a", {"directive": "LABEL=compliant SCORE=0.6"})])
    assert result.reward == pytest.approx(0.8)
    assert result.sub_rewards == {"policy": 1.0, "quality": 0.6}
    assert result.token_usage is not None and result.token_usage.total_tokens > 0


def test_unroutable_model_is_a_validation_error() -> None:
    scorer = BatchScorer(RoutingConfig([ModelRoute("gpt-*", base_url="http://127.0.0.1:9/v1")], "test"))
    with pytest.raises(GraderValidationError) as info:
        Grader(score_spec(model="claude-judge"), judge=scorer)
    assert info.value.problems[0].path == "model" and "claude-judge" in info.value.problems[0].message
    report = rftgrade.validate(
        {"type": "multi", "name": "m", "calculate_output": "a", "graders": {"a": score_spec(model="other")}},
        judge=scorer,
    )
    assert [p.path for p in report.problems] == ["graders.a.model"]


def test_routing_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from rftgrade.judge import load_routing

    path = tmp_path / "models.toml"
    path.write_text(
        '[defaults]\ntimeout = 5\n[models."gpt-*"]\nbase_url = "http://127.0.0.1:1/v1"\nconcurrency = 3\n'
        '[models.local-judge]\nbackend = "local"\npath = "/models/x"\nmode = "expected"\n'
    )
    routing = load_routing(path)
    route = routing.route("gpt-4o")
    assert route is not None and route.concurrency == 3 and route.timeout == 5
    assert routing.route("local-judge").mode == "expected"  # type: ignore[union-attr]
    assert routing.route("claude") is None
    path.write_text('[models.x]\nbase_ulr = "typo"\n')
    with pytest.raises(ValueError, match="base_ulr"):
        load_routing(path)
    monkeypatch.delenv("RFTGRADE_MODELS", raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:2/v1")
    assert load_routing().route("anything") is not None
