"""The local transformers backend, through the same grader code path, on a tiny random LM."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from rftgrade import Grader
from rftgrade.judge import BatchScorer, ModelRoute, RoutingConfig
from rftgrade.judge.local import LocalBackend, score_candidates
from rftgrade.testing.tiny_lm import tiny_causal_lm, tiny_reward_model


def scorer(backend: LocalBackend) -> BatchScorer:
    return BatchScorer(
        RoutingConfig([ModelRoute("local-judge", backend="local", timeout=120)], "test"),
        backends={"local-judge": backend},
    )


SCORE = {
    "type": "score_model",
    "name": "local",
    "model": "local-judge",
    "range": [1, 5],
    "input": [{"role": "user", "content": "Rate this answer: {{ sample.output_text }}"}],
}
LABEL = {
    "type": "label_model",
    "name": "local-label",
    "model": "local-judge",
    "input": [{"role": "user", "content": "Is this safe? {{ sample.output_text }}"}],
    "labels": ["yes", "no"],
    "passing_labels": ["yes"],
}


def rows(n: int) -> list[tuple[str, dict[str, Any]]]:
    return [(f"answer number {i}", {}) for i in range(n)]


def test_generate_mode_gives_a_score_or_a_flag_never_a_crash() -> None:
    model, tokenizer = tiny_causal_lm()
    backend = LocalBackend(model, tokenizer, mode="generate", max_new_tokens=16)
    grader = Grader(SCORE, judge=scorer(backend))
    results = grader.run_batch(rows(6))
    grader.close()
    for result in results:
        assert result.ok or result.errors.model_grader_parse_error
        assert 0.0 <= result.reward <= 5.0
        assert result.token_usage is not None and result.token_usage.prompt_tokens > 0
    assert max(backend.batches) > 1, "requests that arrive together must share a generate() call"


def test_expected_mode_is_smooth_and_in_range() -> None:
    model, tokenizer = tiny_causal_lm()
    backend = LocalBackend(model, tokenizer, mode="expected")
    grader = Grader(SCORE, judge=scorer(backend))
    results = grader.run_batch(rows(8))
    grader.close()
    for result in results:
        assert result.ok, result.error_messages
        assert 1.0 < result.reward < 5.0  # an expectation over 1..5, never exactly an end
        assert math.isfinite(result.scores["expected_score"])
    assert len({round(r.reward, 9) for r in results}) > 1
    assert sum(backend.batches) == 8 and max(backend.batches) > 1


def test_expected_mode_matches_a_direct_forward_pass() -> None:
    import torch

    model, tokenizer = tiny_causal_lm(seed=3)
    backend = LocalBackend(model, tokenizer, mode="expected")
    grader = Grader(SCORE, judge=scorer(backend))
    (result,) = grader.run_batch([("hello", {})])
    grader.close()
    request_prompt = backend._prompt(next(iter([_request("hello")]))) + '{"result": '
    ids = tokenizer(request_prompt, return_tensors="pt", add_special_tokens=False)
    with torch.no_grad():
        probs = torch.softmax(model(**ids).logits[0, -1].float(), dim=-1)
    candidates = score_candidates(1, 5)
    token_ids = [tokenizer(text, add_special_tokens=False)["input_ids"][0] for text, _ in candidates]
    mass = probs[token_ids]
    expected = float(
        sum(float(p) * v for p, (_, v) in zip(mass, candidates, strict=True)) / float(mass.sum())
    )
    assert result.reward == pytest.approx(expected, rel=1e-4)


def _request(text: str) -> Any:
    from rftgrade._executors import JudgeRequest
    from rftgrade._graders.model import score_schema

    return JudgeRequest(
        model="local-judge",
        messages=({"role": "user", "content": f"Rate this answer: {text}"},),
        kind="score",
        response_schema=score_schema(1.0, 5.0),
        score_range=(1.0, 5.0),
    )


def test_expected_mode_labels_report_probabilities() -> None:
    model, tokenizer = tiny_causal_lm()
    grader = Grader(LABEL, judge=scorer(LocalBackend(model, tokenizer, mode="expected")))
    results = grader.run_batch(rows(3))
    grader.close()
    for result in results:
        probs = result.scores["label_probabilities"]
        assert set(probs) == {"yes", "no"} and sum(probs.values()) == pytest.approx(1.0)
        assert result.scores["label"] == max(probs, key=probs.get)
        assert result.reward == (1.0 if result.scores["label"] == "yes" else 0.0)


def test_reward_model_mode() -> None:
    model, tokenizer = tiny_reward_model()
    grader = Grader(SCORE, judge=scorer(LocalBackend(model, tokenizer, mode="reward_model")))
    results = grader.run_batch(rows(4))
    grader.close()
    assert all(r.ok and 1.0 < r.reward < 5.0 for r in results)


def test_from_route_loads_saved_weights_offline(tmp_path: Path) -> None:
    model, tokenizer = tiny_causal_lm()
    model.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    backend = LocalBackend.from_route(
        ModelRoute("local-judge", backend="local", path=str(tmp_path), mode="expected", device="cpu")
    )
    grader = Grader(SCORE, judge=scorer(backend))
    (result,) = grader.run_batch([("x", {})])
    grader.close()
    assert result.ok and 1.0 < result.reward < 5.0
