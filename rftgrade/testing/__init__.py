"""Testing helpers for graders: hypothesis strategies and property checks
(:mod:`.strategies`), a pytest plugin (``load_grader`` fixture), a loopback fake
judge server and a tiny random LM for judge tests."""

from __future__ import annotations

from rftgrade.testing.fake_judge import FakeJudgeServer

__all__ = [
    "FakeJudgeServer",
    "adversarial_texts",
    "check_deterministic",
    "check_monotonic",
    "check_no_crash",
    "check_reward_in_range",
    "items",
    "json_values",
    "samples",
]


def __getattr__(name: str) -> object:
    # The hypothesis strategies load hypothesis only when asked for.
    if name in __all__:
        from rftgrade.testing import strategies

        return getattr(strategies, name)
    raise AttributeError(name)
