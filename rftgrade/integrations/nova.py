"""AWS Nova RFT (Bedrock and SageMaker): a reward Lambda that grades with an OpenAI grader.

Nova calls the reward Lambda with a list of samples, each the training row with the
model's turn appended (AWS, "Implementing reward functions")::

    [{"id": "123",
      "messages": [{"role": "user", ...}, {"role": "assistant", "content": "..."}],
      "reference_answer": {...}, ...}]

(some of AWS's pages put the row's other fields under ``"metadata"``; both are read),
and expects one answer per sample::

    [{"id": "123", "aggregate_reward_score": 0.85,
      "metrics_list": [{"name": "accuracy", "value": 0.9, "type": "Reward"}, ...]}]

The sample is the last assistant message; the item is the row's other fields
(``metadata`` merged in) and its ``messages`` without the model's turn. A ``multi``
grader's sub-rewards are ``Reward`` metrics; ``rftgrade_error`` (1.0 for a sample that
could not be graded, scored 0) is a ``Metric``. The grader is ``grader.json`` beside
the handler, or ``RFTGRADE_GRADER``. Python graders run in the Lambda's own Python,
without a sandbox (``RFTGRADE_SANDBOX`` defaults to ``process`` here): Lambda has no
Docker or bubblewrap, and the Lambda's isolation is the only one.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

__all__ = ["lambda_handler", "nova_answers", "nova_rows"]

_GRADER: Any = None
_LOCK = threading.Lock()


def _grader() -> Any:
    """The grader, compiled once per Lambda container (a misconfiguration raises here, loudly)."""
    global _GRADER
    with _LOCK:
        if _GRADER is None:
            from rftgrade._registry import GraderRegistry

            path = os.environ.get("RFTGRADE_GRADER") or str(Path(os.getcwd()) / "grader.json")
            if not Path(path).is_file():
                beside = Path(os.environ.get("LAMBDA_TASK_ROOT", "")) / "grader.json"
                path = str(beside) if beside.is_file() else path
            registry = GraderRegistry(sandbox=os.environ.get("RFTGRADE_SANDBOX", "process"))
            _GRADER = registry.add(path)
        return _GRADER


def nova_rows(samples: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Nova's samples as rftgrade rows ``{"sample", "item"}`` (see the module docs)."""
    rows = []
    for sample in samples:
        messages = sample.get("messages") if isinstance(sample, dict) else None
        if not isinstance(messages, list) or not messages:
            rows.append({"item": {}, "problem": "the sample has no messages"})
            continue
        last = messages[-1]
        if not isinstance(last, dict) or last.get("role") != "assistant":
            rows.append({"item": {}, "problem": "the last message is not the model's (assistant) turn"})
            continue
        item = {k: v for k, v in sample.items() if k not in ("messages", "metadata")}
        metadata = sample.get("metadata")
        if isinstance(metadata, dict):
            item.update(metadata)
        item["messages"] = messages[:-1]
        rows.append({"sample": last, "item": item})
    return rows


def nova_answers(
    samples: list[dict[str, Any]], results: list[Any], sub_rewards: list[str]
) -> list[dict[str, Any]]:
    """One ``{"id", "aggregate_reward_score", "metrics_list"}`` per sample, same metrics for all."""
    answers = []
    for sample, result in zip(samples, results, strict=True):
        metrics = [
            {"name": key, "value": float(result.sub_rewards.get(key, 0.0)), "type": "Reward"}
            for key in sub_rewards
        ]
        metrics.append({"name": "rftgrade_error", "value": 0.0 if result.ok else 1.0, "type": "Metric"})
        answers.append(
            {
                "id": str(sample.get("id", "")) if isinstance(sample, dict) else "",
                "aggregate_reward_score": float(result.reward) if result.ok else 0.0,
                "metrics_list": metrics,
            }
        )
    return answers


def lambda_handler(event: Any, context: Any = None) -> list[dict[str, Any]]:
    """The reward Lambda's entry point: grade Nova's batch of samples.

    Never raises for a bad sample (it scores 0 with ``rftgrade_error`` 1.0); a missing
    or invalid grader raises, so the Lambda's error names it.
    """
    from rftgrade._result import GradeResult

    samples: list[dict[str, Any]] = event if isinstance(event, list) else [event]
    grader = _grader()
    rows = nova_rows(samples)
    good = [i for i, row in enumerate(rows) if "problem" not in row]
    graded = grader.run_batch([rows[i] for i in good], dedupe=True) if good else []
    results: list[Any] = [None] * len(rows)
    for i, result in zip(good, graded, strict=True):
        results[i] = result
    for i, row in enumerate(rows):
        if results[i] is None:
            failed = GradeResult(reward=0.0, name=grader.name, type=grader.type)
            results[i] = failed.fail("sample_parse_error", row["problem"])
    spec = grader.to_dict()
    subs = sorted(spec.get("graders", {})) if spec.get("type") == "multi" else []
    return nova_answers(samples, results, subs)
