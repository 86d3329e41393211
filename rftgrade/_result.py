"""Grading results in OpenAI's ``graders/run`` response shape.

:class:`GradeResult` is a light slotted object (a batch of 25,000 rewards should
not build 25,000 pydantic models); :meth:`GradeResult.to_dict` gives the exact
JSON of OpenAI's ``GraderRunResponse``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import Any

__all__ = ["ERROR_FLAGS", "GradeResult", "GraderErrors", "TokenUsage"]

ERROR_FLAGS = (
    "formula_parse_error",
    "sample_parse_error",
    "truncated_observation_error",
    "unresponsive_reward_error",
    "invalid_variable_error",
    "other_error",
    "python_grader_server_error",
    "python_grader_server_error_type",
    "python_grader_runtime_error",
    "python_grader_runtime_error_details",
    "model_grader_server_error",
    "model_grader_refusal_error",
    "model_grader_parse_error",
    "model_grader_server_error_details",
)
"""The fourteen keys of ``metadata.errors``, in OpenAI's order."""

_BOOL_FLAGS = tuple(f for f in ERROR_FLAGS if not f.endswith(("_type", "_details")))


@dataclass(slots=True)
class GraderErrors:
    """``metadata.errors``: eleven boolean flags and three detail strings."""

    formula_parse_error: bool = False
    sample_parse_error: bool = False
    truncated_observation_error: bool = False
    unresponsive_reward_error: bool = False
    invalid_variable_error: bool = False
    other_error: bool = False
    python_grader_server_error: bool = False
    python_grader_server_error_type: str | None = None
    python_grader_runtime_error: bool = False
    python_grader_runtime_error_details: str | None = None
    model_grader_server_error: bool = False
    model_grader_refusal_error: bool = False
    model_grader_parse_error: bool = False
    model_grader_server_error_details: str | None = None

    @property
    def any(self) -> bool:
        """True when any boolean flag is set."""
        return any(getattr(self, f) for f in _BOOL_FLAGS)

    def raised(self) -> list[str]:
        """Names of the boolean flags that are set."""
        return [f for f in _BOOL_FLAGS if getattr(self, f)]

    def merge(self, other: GraderErrors) -> None:
        """OR ``other``'s flags into these (used by ``multi``); first details win."""
        for f in fields(self):
            mine, theirs = getattr(self, f.name), getattr(other, f.name)
            if isinstance(theirs, bool):
                setattr(self, f.name, mine or theirs)
            elif mine is None and theirs is not None:
                setattr(self, f.name, theirs)

    def to_dict(self) -> dict[str, Any]:
        # Not dataclasses.asdict: it deep-copies, and a 25,000-row response calls this 25,000 times.
        return {name: getattr(self, name) for name in ERROR_FLAGS}


@dataclass(slots=True)
class TokenUsage:
    """Token counts of a model grader's calls, as OpenAI reports them."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    cached_tokens: int = 0

    def add(self, other: TokenUsage) -> None:
        self.prompt_tokens += other.prompt_tokens
        self.completion_tokens += other.completion_tokens
        self.total_tokens += other.total_tokens
        self.cached_tokens += other.cached_tokens

    def to_dict(self) -> dict[str, int]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.total_tokens,
            "cached_tokens": self.cached_tokens,
        }


@dataclass(slots=True)
class GradeResult:
    """The outcome of grading one ``(sample, item)``.

    A failure is never an exception: ``reward`` is 0 and ``errors`` says why, with a
    human-readable line per failure in ``error_messages``.
    """

    reward: float
    name: str
    type: str
    errors: GraderErrors = field(default_factory=GraderErrors)
    execution_time: float = 0.0
    scores: dict[str, Any] = field(default_factory=dict)
    token_usage: TokenUsage | None = None
    sampled_model_name: str | None = None
    sub_rewards: dict[str, Any] = field(default_factory=dict)
    token_usage_per_model: dict[str, TokenUsage] = field(default_factory=dict)
    error_messages: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when no error flag is set."""
        return not self.errors.any

    def fail(self, flag: str, message: str, **details: str | None) -> GradeResult:
        """Mark this result failed with ``flag``; the reward becomes 0."""
        setattr(self.errors, flag, True)
        for key, value in details.items():
            setattr(self.errors, key, value)
        self.error_messages.append(message)
        self.reward = 0.0
        return self

    def to_dict(self) -> dict[str, Any]:
        """OpenAI's ``GraderRunResponse`` JSON (plus ``metadata.error_messages``)."""
        reward = self.reward if math.isfinite(self.reward) else 0.0
        metadata: dict[str, Any] = {
            "name": self.name,
            "type": self.type,
            "errors": self.errors.to_dict(),
            "execution_time": self.execution_time,
            "scores": self.scores,
            "token_usage": self.token_usage.to_dict() if self.token_usage else None,
            "sampled_model_name": self.sampled_model_name,
        }
        if self.error_messages:
            metadata["error_messages"] = list(self.error_messages)
        return {
            "reward": reward,
            "metadata": metadata,
            "sub_rewards": self.sub_rewards,
            "model_grader_token_usage_per_model": {
                model: usage.to_dict() for model, usage in self.token_usage_per_model.items()
            },
        }
