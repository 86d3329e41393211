"""Tool calls written in a completion through every trainer adapter: a grader moved from
OpenAI reads them as ``sample.output_tools``, unless told to keep the text; a bad setting
is an error that names it. (verl's and OpenRLHF's own decoding, and parity with verl's
tool parsers: test_real_trainers.py.)"""

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

# OpenAI's own check of a function-calling answer: the tool's name and its arguments.
CALLED = {
    "type": "multi",
    "name": "called",
    "graders": {
        "name": string_check(
            name="name", input="{{ sample.output_tools[0].function.name }}", reference="{{ item.tool }}"
        ),
        "args": string_check(
            name="args",
            input="{{ sample.output_tools[0].function.arguments }}",
            reference="{{ item.arguments }}",
        ),
    },
    "calculate_output": "(name + args) / 2",
}
ITEM = {"tool": "get_weather", "arguments": '{"city": "Paris"}'}
QWEN3 = '<think>\nThe user wants the weather.\n</think>\n\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>'
HARMONY = (
    "<|channel|>analysis<|message|>The user wants the weather.<|end|><|start|>assistant<|channel|>commentary "
    'to=functions.get_weather <|constrain|>json<|message|>{"city": "Paris"}<|call|>'
)
QWEN35 = (
    "<tool_call>\n<function=get_weather>\n<parameter=city>\nParis\n</parameter>\n</function>\n</tool_call>"
)
HARMONY_BARE = (
    'analysisThe user wants the weather.assistantcommentary to=functions.get_weather json{"city": "Paris"}'
)


@pytest.fixture
def grader_file(tmp_path: Path) -> Path:
    path = tmp_path / "called.json"
    path.write_text(json.dumps(CALLED))
    return path


def trl_rewards(reward: Any) -> list[float | None]:
    completions = [QWEN3, [{"role": "assistant", "content": QWEN3}], HARMONY, HARMONY_BARE, QWEN35]
    kwargs = {key: [value] * 5 for key, value in ITEM.items()}
    return asyncio.run(reward(prompts=["p"] * 5, completions=completions, trainer_state=None, **kwargs))


def test_trl_grades_the_calls_in_process_and_through_a_server(grader_file: Path) -> None:
    assert trl_rewards(trl_adapter.make_reward_function(str(grader_file))) == [1.0] * 5
    # Kept as text, output_tools is empty: every row fails to grade (TRL skips it).
    kept = trl_adapter.make_reward_function(str(grader_file), tool_calls="keep")
    assert trl_rewards(kept) == [None] * 5
    with running_server(ServerConfig(graders={"called": str(grader_file)})) as url:
        remote = trl_adapter.make_reward_function("called", server_url=url)
        assert trl_rewards(remote) == [1.0] * 5  # read before the rows are sent
    with pytest.raises(RewardSourceError, match=r"tool_calls is 'hermes' \(RFTGRADE_TOOL_CALLS.*parse.*keep"):
        trl_adapter.make_reward_function(str(grader_file), tool_calls="hermes")


def test_a_message_with_its_own_tool_calls_is_graded_as_it_is(grader_file: Path) -> None:
    # TRL with tools= parses the calls itself: its message is not read again.
    reward = trl_adapter.make_reward_function(str(grader_file))
    own = {
        "role": "assistant",
        "content": "",
        "tool_calls": [
            {"type": "function", "function": {"name": "get_weather", "arguments": ITEM["arguments"]}}
        ],
    }
    other = {**own, "content": '<tool_call>{"name": "other", "arguments": {}}</tool_call>'}
    kwargs = {key: [value] * 2 for key, value in ITEM.items()}
    scores = asyncio.run(
        reward(prompts=["p"] * 2, completions=[[own], [other]], trainer_state=None, **kwargs)
    )
    assert scores == [1.0, 1.0]


def test_verl_reads_the_setting_from_its_environment(
    grader_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    verl = importlib.import_module("rftgrade.integrations.verl")
    monkeypatch.setenv("RFTGRADE_GRADER", str(grader_file))
    monkeypatch.delenv("RFTGRADE_SERVER_URL", raising=False)
    extra_info = {"rftgrade_item": json.dumps(ITEM)}
    scores = {}
    for mode in ("parse", "keep"):
        monkeypatch.setenv("RFTGRADE_TOOL_CALLS", mode)
        monkeypatch.setattr(verl, "_STATE", None)
        for name, text in (("qwen3", QWEN3), ("gpt_oss", HARMONY_BARE)):
            result = verl.compute_score(
                data_source="d", solution_str=text, ground_truth="", extra_info=extra_info
            )
            scores[mode, name] = result["score"]
    assert scores == {
        ("parse", "qwen3"): 1.0,
        ("parse", "gpt_oss"): 1.0,
        ("keep", "qwen3"): 0.0,
        ("keep", "gpt_oss"): 0.0,
    }
    monkeypatch.setenv("RFTGRADE_TOOL_CALLS", "yes")
    monkeypatch.setattr(verl, "_STATE", None)
    with pytest.raises(RewardSourceError, match=r"tool_calls is 'yes' \(RFTGRADE_TOOL_CALLS"):
        verl.compute_score(data_source="d", solution_str=QWEN3, ground_truth="", extra_info=extra_info)


def test_verifiers_reply_and_a_call_that_does_not_parse_is_logged(
    grader_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    reward = verifiers_adapter.make_reward(str(grader_file))

    async def score(reply: str) -> float:
        return await reward(dict(ITEM), [{"role": "assistant", "content": reply}])

    assert asyncio.run(score(QWEN3)) == 1.0
    with caplog.at_level(logging.WARNING, logger="rftgrade.integrations"):
        assert asyncio.run(score('<tool_call>{"name": "get_weather", "city": "Paris"}</tool_call>')) == 0.0
    warning = [r.getMessage() for r in caplog.records if "tool call did not parse" in r.getMessage()]
    assert (
        warning and '{"name": ..., "arguments": {...}}' in warning[0] and "graded as their text" in warning[0]
    )


def test_a_completion_that_cannot_be_read_is_graded_as_given_and_logged(
    grader_file: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from rftgrade.integrations import _samples

    real = _samples._as_openai

    def broken(text: str, *args: Any) -> Any:
        if "Lyon" in text:
            raise RuntimeError("a bug in the reader")
        return real(text, *args)

    monkeypatch.setattr(_samples, "_as_openai", broken)
    reward = trl_adapter.make_reward_function(str(grader_file), failed_reward=0.0)
    lyon = QWEN3.replace("Paris", "Lyon")
    kwargs = {key: [value] * 2 for key, value in ITEM.items()}
    with caplog.at_level(logging.WARNING, logger="rftgrade.integrations"):
        scores = asyncio.run(
            reward(prompts=["p"] * 2, completions=[QWEN3, lyon], trainer_state=None, **kwargs)
        )
    assert scores == [1.0, 0.0]  # the other row of the batch is graded as ever
    logged = [r.getMessage() for r in caplog.records]
    assert any("could not read" in m and "graded as given" in m for m in logged)


def openrlhf_body() -> dict[str, Any]:
    label = json.dumps(ITEM)
    return {
        "query": [
            f"P{QWEN3}<|im_end|>",
            # the closing tag forgotten before the end of turn: vLLM never sees the token
            'P<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}<|im_end|>',
            f"P{HARMONY}",
            "PIt is sunny.<|im_end|>",
        ],
        "prompts": ["P"] * 4,
        "labels": [label] * 4,
    }


def test_openrlhf_route_reads_calls_around_the_special_tokens(grader_file: Path) -> None:
    for mode, expected in (("parse", [1.0, 1.0, 1.0, 0.0]), ("keep", [0.0, 0.0, 0.0, 0.0])):
        config = ServerConfig(graders={"m": str(grader_file)}, tool_calls=mode)
        assert openrlhf_rewards(config, openrlhf_body()) == expected, mode
    with pytest.raises(ValueError, match=r"ServerConfig\.tool_calls is 'off'"):
        create_app(ServerConfig(tool_calls="off"))


def test_serve_refuses_an_unknown_tool_call_setting(grader_file: Path) -> None:
    error = serve_refusal("--grader", f"m={grader_file}", "--tool-calls", "hermes")
    assert "--tool-calls (or RFTGRADE_TOOL_CALLS) is 'hermes'; use parse or keep" in error
