"""Testing helpers for graders: a loopback fake judge server (and more to come)."""

from __future__ import annotations

from rftgrade.testing.fake_judge import FakeJudgeServer

__all__ = ["FakeJudgeServer"]
