"""Trainer adapters: verl (:mod:`.verl`), TRL (:mod:`.trl`), verifiers (:mod:`.verifiers`),
AWS Nova RFT (:mod:`.nova`); OpenRLHF uses the server's ``/v1/openrlhf/reward`` endpoint
(:mod:`.openrlhf`). Each grades in-process or through ``rftgrade serve``, and raises
:class:`RewardSourceError` with the fix when it is misconfigured."""

from __future__ import annotations

from rftgrade.integrations._client import (
    RewardSource,
    RewardSourceError,
    batch_body,
    grade_rewards,
    grade_rows,
)

__all__ = ["RewardSource", "RewardSourceError", "batch_body", "grade_rewards", "grade_rows"]
