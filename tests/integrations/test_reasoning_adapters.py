"""A reasoning model's completions through every trainer adapter: the grader gets the
final answer (as OpenAI's did), unless told to keep the reasoning; a bad setting is an
error that names it. (verl's and OpenRLHF's own decoding: test_real_trainers.py.)"""

from __future__ import annotations

import asyncio
import importlib
import json
import logging
from pathlib import Path
from typing import Any

import pytest

from rftgrade.integrations import trl as trl_adapter
from rftgrade.integrations import verifiers as verifiers_adapter
from rftgrade.integrations._client import RewardSourceError
from rftgrade.server import ServerConfig, create_app

from ..conftest import string_check
from ..server.conftest import openrlhf_rewards, running_server, serve_refusal

EXACT = string_check(reference="{{ item.ground_truth }}")
THINK = "<think>\nSix sevens: 42.\n</think>\n\n42"
TRL_KWARGS = {"ground_truth": ["42"] * 3, "trainer_state": None}


@pytest.fixture
def grader_file(tmp_path: Path) -> Path:
    path = tmp_path / "exact.json"
    path.write_text(json.dumps(EXACT))
    return path


def trl_rewards(reward: Any) -> list[float | None]:
    completions = [THINK, [{"role": "assistant", "content": THINK}], "Six sevens: 42.</think>42"]
    return asyncio.run(reward(prompts=["p"] * 3, completions=completions, **TRL_KWARGS))


def test_trl_grades_the_final_answer_in_process_and_through_a_server(grader_file: Path) -> None:
    assert trl_rewards(trl_adapter.make_reward_function(str(grader_file))) == [1.0, 1.0, 1.0]
    kept = trl_adapter.make_reward_function(str(grader_file), reasoning="keep")
    assert trl_rewards(kept) == [0.0, 0.0, 0.0]
    with running_server(ServerConfig(graders={"exact": str(grader_file)})) as url:
        remote = trl_adapter.make_reward_function("exact", server_url=url)
        assert trl_rewards(remote) == [1.0, 1.0, 1.0]  # cut before the rows are sent
    with pytest.raises(RewardSourceError, match=r"RFTGRADE_REASONING.*strip.*keep"):
        trl_adapter.make_reward_function(str(grader_file), reasoning="drop")


def test_verl_reads_the_setting_from_its_environment(
    grader_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    verl = importlib.import_module("rftgrade.integrations.verl")
    monkeypatch.setenv("RFTGRADE_GRADER", str(grader_file))
    monkeypatch.delenv("RFTGRADE_SERVER_URL", raising=False)
    scores = {}
    for mode in ("strip", "keep"):
        monkeypatch.setenv("RFTGRADE_REASONING", mode)
        monkeypatch.setattr(verl, "_STATE", None)
        scores[mode] = verl.compute_score(data_source="d", solution_str=THINK, ground_truth="42")["score"]
    assert scores == {"strip": 1.0, "keep": 0.0}
    monkeypatch.setenv("RFTGRADE_REASONING", "yes")
    monkeypatch.setattr(verl, "_STATE", None)
    with pytest.raises(RewardSourceError, match="reasoning is 'yes' \\(RFTGRADE_REASONING"):
        verl.compute_score(data_source="d", solution_str=THINK, ground_truth="42")


def test_verifiers_reply_and_a_reply_cut_inside_its_reasoning_is_logged(
    grader_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    reward = verifiers_adapter.make_reward(str(grader_file))

    async def score(reply: str) -> float:
        return await reward({"ground_truth": "42"}, [{"role": "assistant", "content": reply}])

    assert asyncio.run(score(THINK)) == 1.0
    with caplog.at_level(logging.WARNING, logger="rftgrade.integrations"):
        assert asyncio.run(score("<think>\nSix sevens are")) == 0.0
    warning = [r.getMessage() for r in caplog.records if "inside their reasoning" in r.getMessage()]
    assert (
        warning and "raise the response length" in warning[0] and "graded as the empty answer" in warning[0]
    )


def openrlhf_body() -> dict[str, Any]:
    harmony = "<|channel|>analysis<|message|>Six sevens.<|end|><|start|>assistant<|channel|>final<|message|>42<|return|>"
    return {
        "query": [f"P{THINK}<|im_end|>", f"P{harmony}", "P42<|im_end|>"],
        "prompts": ["P"] * 3,
        "labels": ["42"] * 3,
    }


def test_openrlhf_route_cuts_before_special_tokens_and_keeps_when_told(grader_file: Path) -> None:
    label = string_check(reference="{{ item.label }}")
    grader_file.write_text(json.dumps(label))
    for mode, expected in (("strip", [1.0, 1.0, 1.0]), ("keep", [0.0, 0.0, 1.0])):
        config = ServerConfig(graders={"m": str(grader_file)}, reasoning=mode)
        assert openrlhf_rewards(config, openrlhf_body()) == expected, mode
    with pytest.raises(ValueError, match=r"ServerConfig\.reasoning is 'off'"):
        create_app(ServerConfig(reasoning="off"))


def test_serve_refuses_an_unknown_reasoning_setting(grader_file: Path) -> None:
    error = serve_refusal("--grader", f"m={grader_file}", "--reasoning", "drop")
    assert "--reasoning (or RFTGRADE_REASONING) is 'drop'; use strip or keep" in error
