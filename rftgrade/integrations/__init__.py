"""Trainer adapters: verl (:mod:`.verl`), TRL (:mod:`.trl`); OpenRLHF uses the server's
``/v1/openrlhf/reward`` endpoint. Each grades in-process or through ``rftgrade serve``."""

from __future__ import annotations

from rftgrade.integrations._client import RewardSource, batch_body, grade_rewards, grade_rows

__all__ = ["RewardSource", "batch_body", "grade_rewards", "grade_rows"]
