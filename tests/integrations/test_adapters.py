"""verl and TRL adapters, called the way those trainers call them, in-process and through a server."""

from __future__ import annotations

import asyncio
import importlib
import inspect
import json
import pickle
from pathlib import Path
from typing import Any

import pytest

from rftgrade.integrations import batch_body
from rftgrade.integrations import trl as trl_adapter
from rftgrade.integrations._client import RewardSourceError, _in_process
from rftgrade.server import ServerConfig

from ..conftest import string_check
from ..server.conftest import running_server

MULTI = {
    "type": "multi",
    "name": "m",
    "calculate_output": "0.5 * exact + 0.5 * sim",
    "graders": {
        "exact": string_check(reference="{{ item.ground_truth }}"),
        "sim": {
            "type": "text_similarity",
            "name": "s",
            "input": "{{ sample.output_text }}",
            "reference": "{{ item.ground_truth }}",
            "evaluation_metric": "fuzzy_match",
        },
    },
}


@pytest.fixture
def grader_file(tmp_path: Path) -> Path:
    path = tmp_path / "grader.json"
    path.write_text(json.dumps(MULTI))
    return path


@pytest.fixture
def verl(monkeypatch: pytest.MonkeyPatch, grader_file: Path) -> Any:
    monkeypatch.setenv("RFTGRADE_GRADER", str(grader_file))
    monkeypatch.delenv("RFTGRADE_SERVER_URL", raising=False)
    module = importlib.import_module("rftgrade.integrations.verl")
    monkeypatch.setattr(module, "_STATE", None)
    return module


def test_verl_compute_score_keyword_call_with_stable_keys(verl: Any) -> None:
    assert inspect.iscoroutinefunction(verl.compute_score_async)
    assert not inspect.iscoroutinefunction(verl.compute_score)

    async def step() -> list[dict[str, Any]]:
        calls = [
            verl.compute_score_async(
                data_source="gsm8k", solution_str=s, ground_truth="42", extra_info={"index": i}
            )
            for i, s in enumerate(["42", "41", "forty-two", ""])
        ]
        return await asyncio.gather(*calls)

    results = asyncio.run(step())
    assert [set(r) for r in results] == [{"score", "rftgrade_error", "rftgrade_exact", "rftgrade_sim"}] * 4
    assert results[0]["score"] == 1.0 and results[1]["score"] < 0.5 and results[3]["score"] == 0.0
    assert all(isinstance(v, float) for r in results for v in r.values())


def test_verl_failed_samples_carry_the_same_keys(
    verl: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # A sample whose item lacks what the grader reads fails; verl takes the keys from
    # the first sample, so the failed one must carry the sub-graders' keys too.
    path = tmp_path / "explained.json"
    graders = {**MULTI["graders"], "exact": string_check(reference="{{ item.explanation }}")}  # type: ignore[dict-item]
    path.write_text(json.dumps({**MULTI, "graders": graders}))
    monkeypatch.setenv("RFTGRADE_GRADER", str(path))
    good = verl.compute_score(
        data_source="d", solution_str="42", ground_truth="42", extra_info={"explanation": "42"}
    )
    bad = verl.compute_score(data_source="d", solution_str="42", ground_truth="42", extra_info={})
    assert set(good) == set(bad) == {"score", "rftgrade_error", "rftgrade_exact", "rftgrade_sim"}
    assert bad["rftgrade_error"] == 1.0 and good["rftgrade_error"] == 0.0


def test_verl_misconfiguration_raises_with_the_fix(
    verl: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("RFTGRADE_GRADER", str(tmp_path / "missing.json"))
    with pytest.raises(RewardSourceError, match="no grader file at"):
        verl.compute_score("d", "x", "y")
    monkeypatch.setattr(verl, "_STATE", None)
    monkeypatch.delenv("RFTGRADE_GRADER")
    with pytest.raises(RewardSourceError, match="RFTGRADE_GRADER"):
        asyncio.run(verl.compute_score_async("d", "x", "y"))


def trl_kwargs(n: int) -> dict[str, Any]:
    return {
        "ground_truth": ["42"] * n,
        "trainer_state": object(),
        "log_extra": lambda *a: None,
        "log_metric": lambda *a: None,
        "environments": None,
    }


def test_trl_reward_function_is_picklable_async_and_drops_trl_kwargs(grader_file: Path) -> None:
    reward = trl_adapter.make_reward_function(str(grader_file))
    restored = pickle.loads(pickle.dumps(reward))
    assert inspect.iscoroutinefunction(restored)
    prompts = ["What is 6*7?", [{"role": "user", "content": "What is 6*7?"}]]
    completions = ["42", [{"role": "assistant", "content": "41"}]]
    rewards = asyncio.run(
        restored(prompts=prompts, completions=completions, completion_ids=[[1], [2]], **trl_kwargs(2))
    )
    assert rewards[0] == 1.0 and rewards[1] is not None and rewards[1] < 0.5


def test_trl_unscorable_sample_is_none_or_the_chosen_value(tmp_path: Path) -> None:
    path = tmp_path / "g.json"
    path.write_text(json.dumps(string_check(reference="{{ item.missing_column }}")))
    for failed, expected in ((None, None), (0.0, 0.0)):
        reward = trl_adapter.make_reward_function(str(path), failed_reward=failed)
        assert asyncio.run(reward(prompts=["p"], completions=["x"], **trl_kwargs(1))) == [expected]


def test_adapters_through_a_running_server(
    grader_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps(string_check(reference="{{ item.missing_column }}")))
    config = ServerConfig(graders={"m": str(grader_file), "broken": str(broken)}, api_key="k")
    with running_server(config) as url:
        reward = trl_adapter.make_reward_function("m", server_url=url, api_key="k")
        assert asyncio.run(reward(prompts=["p", "p"], completions=["42", "0"], **trl_kwargs(2))) == [1.0, 0.0]
        # Unscorable remotely: the compact answer's failures reach TRL as None (or the chosen value).
        for failed, expected in ((None, None), (0.0, 0.0)):
            reward = trl_adapter.make_reward_function(
                "broken", server_url=url, api_key="k", failed_reward=failed
            )
            assert asyncio.run(reward(prompts=["p"], completions=["x"], **trl_kwargs(1))) == [expected]
        # A GRPO step, TRL's way: each prompt's completions side by side, its dataset
        # columns repeated for each (sent to the server as groups).
        truths = [str(g) for g in range(3) for _ in range(4)]
        completions = [str(g if k % 2 == 0 else -1) for g in range(3) for k in range(4)]
        kwargs = {**trl_kwargs(12), "ground_truth": truths}
        reward = trl_adapter.make_reward_function("m", server_url=url, api_key="k")
        rewards = asyncio.run(reward(prompts=["p"] * 12, completions=completions, **kwargs))
        assert [r == 1.0 for r in rewards] == [k % 2 == 0 for _ in range(3) for k in range(4)]
        monkeypatch.setenv("RFTGRADE_SERVER_URL", url)
        monkeypatch.setenv("RFTGRADE_API_KEY", "k")
        monkeypatch.setenv("RFTGRADE_GRADER", "m")
        verl = importlib.import_module("rftgrade.integrations.verl")
        monkeypatch.setattr(verl, "_STATE", None)
        result = verl.compute_score(data_source="d", solution_str="42", ground_truth="42")
        assert result["score"] == 1.0 and result["rftgrade_error"] == 0.0
        # The sub-graders' keys are asked of the server: a failed sample has them too.
        assert set(result) == {"score", "rftgrade_error", "rftgrade_exact", "rftgrade_sim"}
        monkeypatch.setenv("RFTGRADE_GRADER", "broken")
        monkeypatch.setattr(verl, "_STATE", None)
        failed = verl.compute_score(data_source="d", solution_str="42", ground_truth="42")
        assert set(failed) == {"score", "rftgrade_error"} and failed["rftgrade_error"] == 1.0


def test_batch_body_sends_each_shared_item_once() -> None:
    a, b = {"q": 1}, {"q": 2}
    rows: list[Any] = [
        {"sample": "x", "item": a},
        {"sample": "y", "item": dict(a)},
        {"sample": "z", "item": b},
    ]
    rows.append({"sample": "w", "item": b})
    assert batch_body(rows) == {
        "groups": [{"item": a, "samples": ["x", "y"]}, {"item": b, "samples": ["z", "w"]}]
    }
    # Items that differ row to row, and rows the server must flag on their own, go as rows.
    apart = [{"sample": "x", "item": a}, {"sample": "y", "item": b}, {"sample": "z", "item": a}]
    assert batch_body(apart) == {"rows": apart}
    odd: list[Any] = [{"sample": "x", "item": a}, {"item": a}, ["x", a]]
    assert batch_body(odd) == {"rows": odd}
    # In-process, the same grouping gives equal neighbours one item object.
    columns = _in_process(rows)
    assert columns.samples == ["x", "y", "z", "w"]
    assert columns.items[0] is columns.items[1] and columns.items[2] is columns.items[3]
    assert _in_process(apart) is apart


def test_trl_in_process_grpo_batch_gives_each_completion_its_prompts_item(tmp_path: Path) -> None:
    # TRL builds one item dict per completion; neighbours with equal items share one
    # object on the way to the sandbox, and a grader that changes its item still
    # sees the prompt's own columns on every call.
    source = (
        "def grade(sample, item):\n"
        "    truth = item.pop('ground_truth')\n"
        "    item['seen'] = True\n"
        "    return 1.0 if sample['output_text'] == truth and 'ground_truth' not in item else 0.0\n"
    )
    path = tmp_path / "pop.json"
    path.write_text(json.dumps({"type": "python", "name": "pop", "source": source}))
    reward = trl_adapter.make_reward_function(str(path), sandbox="process")
    truths = [str(g) for g in range(4) for _ in range(8)]
    completions = [t if k % 3 else "wrong" for k, t in enumerate(truths)]
    rewards = asyncio.run(
        reward(prompts=["p"] * 32, completions=completions, **{**trl_kwargs(32), "ground_truth": truths})
    )
    assert rewards == [0.0 if k % 3 == 0 else 1.0 for k in range(32)]
