"""Misconfiguration is loud: construction raises with the fix; what only a call can
reveal is logged at WARNING (URL and server message) the first time, then counted."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path
from typing import Any

import pytest

from rftgrade.integrations import _loud
from rftgrade.integrations import trl as trl_adapter
from rftgrade.integrations._client import RewardSourceError
from rftgrade.server import ServerConfig

from ..conftest import string_check
from ..server.conftest import running_server


@pytest.fixture(autouse=True)
def fresh_counters(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_loud, "_COUNTERS", {})
    monkeypatch.setattr(_loud, "LOG_EVERY", 3)


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.levelno == logging.WARNING and r.name == "rftgrade.integrations"
    ]


def call(reward: Any, n: int = 2) -> list[Any]:
    result: list[Any] = asyncio.run(reward(prompts=["p"] * n, completions=["x"] * n))
    return result


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"grader": "/nowhere/grader.json"}, "no grader file at /nowhere/grader.json"),
        ({"grader": "chip"}, "also set server_url"),
        ({"grader": None}, "RFTGRADE_GRADER"),
        ({"grader": '{"type": "string_check"}'}, "required field `input` is missing"),
        ({"grader": "GRADER", "sandbox": "dokker"}, "unknown sandbox 'dokker'"),
        ({"grader": "chip", "server_url": "127.0.0.1:8000"}, "not a URL like http://"),
    ],
)
def test_construction_raises_with_the_fix(tmp_path: Path, kwargs: dict[str, Any], match: str) -> None:
    path = tmp_path / "g.json"
    path.write_text(json.dumps(string_check()))
    if kwargs.get("grader") == "GRADER":
        kwargs = {**kwargs, "grader": str(path)}
    with pytest.raises(RewardSourceError, match=match):
        trl_adapter.make_reward_function(**kwargs)


def test_unreachable_server_is_logged_once_then_counted(caplog: pytest.LogCaptureFixture) -> None:
    reward = trl_adapter.make_reward_function("chip", server_url="http://127.0.0.1:9")
    with caplog.at_level(logging.WARNING):
        assert call(reward) == [None, None]
        first = warnings_of(caplog)
        assert len(first) == 1 and "http://127.0.0.1:9/v1/grade" in first[0] and "cannot reach" in first[0]
        call(reward)
        assert len(warnings_of(caplog)) == 1  # counted, not repeated
        call(reward)
        lines = warnings_of(caplog)
        assert len(lines) == 2 and "3 reward calls that failed" in lines[1] and "6 samples" in lines[1]


def test_server_refusals_are_logged_with_the_servers_message(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "g.json"
    path.write_text(json.dumps(string_check()))
    with (
        running_server(ServerConfig(graders={"m": str(path)}, api_key="k")) as url,
        caplog.at_level(logging.WARNING),
    ):
        unknown = trl_adapter.make_reward_function("nope", server_url=url, api_key="k", failed_reward=0.0)
        assert call(unknown) == [0.0, 0.0]
        wrong_key = trl_adapter.make_reward_function("m", server_url=url, api_key="wrong")
        assert call(wrong_key) == [None, None]
        lines = warnings_of(caplog)
    assert len(lines) == 2
    assert f"{url}/v1/grade answered 404" in lines[0] and "nope" in lines[0]
    assert f"{url}/v1/grade answered 401" in lines[1] and "bearer token" in lines[1]


def test_samples_that_fail_to_grade_are_logged(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "g.json"
    path.write_text(json.dumps(string_check(reference="{{ item.reference_explanation }}")))
    reward = trl_adapter.make_reward_function(str(path))
    with caplog.at_level(logging.WARNING):
        assert call(reward, 4) == [None] * 4
        call(reward, 4)
    lines = warnings_of(caplog)
    assert (
        len(lines) == 1 and "samples that failed to grade" in lines[0] and "reference_explanation" in lines[0]
    )
    assert "4 sample(s)" in lines[0]
