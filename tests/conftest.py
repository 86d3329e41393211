"""Shared fixtures. Set RFTGRADE_REQUIRE_SANDBOXES=1 (CI does) to turn missing-engine skips into failures."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "grader_examples"


def require_or_skip(available: bool, what: str) -> None:
    """Skip when ``what`` is missing locally; fail in CI, where it must exist."""
    if available:
        return
    if os.environ.get("RFTGRADE_REQUIRE_SANDBOXES") == "1":
        pytest.fail(f"{what} is required in CI but is not available")
    pytest.skip(f"{what} is not available")


def string_check(op: str = "eq", **kw: Any) -> dict[str, Any]:
    return {
        "type": "string_check",
        "name": kw.pop("name", "check"),
        "input": kw.pop("input", "{{ sample.output_text }}"),
        "reference": kw.pop("reference", "{{ item.answer }}"),
        "operation": op,
        **kw,
    }


def constant_python(reward: float, name: str = "p") -> dict[str, Any]:
    """A python grader that gives every sample ``reward``."""
    return {"type": "python", "name": name, "source": f"def grade(sample, item):\n    return {reward!r}\n"}


def score_model(model: str, name: str) -> dict[str, Any]:
    """A score_model grader asking ``model`` about the sample's text."""
    return {
        "type": "score_model",
        "name": name,
        "model": model,
        "input": [{"role": "user", "content": "{{ sample.output_text }}"}],
    }


@pytest.fixture
def examples() -> Path:
    return EXAMPLES
