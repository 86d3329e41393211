"""Judges for ``score_model`` and ``label_model`` graders: routing, the batch scorer, backends.

``BatchScorer`` is the :class:`~rftgrade.JudgeExecutor` graders use; it routes each
model name (``rftgrade-models.toml`` or ``OPENAI_BASE_URL``) to an OpenAI-compatible
server or a local transformers model (:mod:`rftgrade.judge.local`).
"""

from __future__ import annotations

from rftgrade.judge._base import JudgeBackend, RetryableError
from rftgrade.judge._config import ModelRoute, RoutingConfig, load_routing
from rftgrade.judge._scorer import BatchScorer, ScorerStats

__all__ = [
    "BatchScorer",
    "JudgeBackend",
    "ModelRoute",
    "RetryableError",
    "RoutingConfig",
    "ScorerStats",
    "load_routing",
]
