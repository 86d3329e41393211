"""The real trainers' own code paths with rftgrade's adapters: verl's reward managers,
OpenRLHF's remote-reward client, TRL's GRPOTrainer, verifiers' rubric.

The trainers live in a venv of their own (``scripts/setup-trainers.sh``, run by
``scripts/setup.sh``), never the main environment: each test runs a script from
``tests/integrations/trainers/`` with that venv's Python and this checkout on
``PYTHONPATH``, and checks the one RESULT line it prints.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from ..conftest import require_or_skip

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = Path(__file__).parent / "trainers"
VENV = Path(os.environ.get("RFTGRADE_TRAINERS_VENV", "/var/lib/rftgrade/trainers-venv"))
PYTHON = VENV / "bin" / "python"

pytestmark = pytest.mark.timeout(600)


def run(script: str, *args: str, extra_path: str | None = None) -> dict[str, Any]:
    require_or_skip(PYTHON.exists(), f"the trainers' venv ({VENV}; bash scripts/setup-trainers.sh)")
    path = [str(ROOT), *([extra_path] if extra_path else [])]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(path), "RAY_AUTH_MODE": "disabled"}
    env.pop("RFTGRADE_GRADER", None)
    env.pop("RFTGRADE_SERVER_URL", None)
    proc = subprocess.run(
        [str(PYTHON), str(SCRIPTS / script), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=540,
        cwd=str(ROOT),
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, (
        f"{script} failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-6000:]}"
    )
    result: dict[str, Any] = json.loads(lines[-1][len("RESULT ") :])
    result["_output"] = proc.stdout + proc.stderr
    return result


EXPECTED = [1.0, 0.0, 1.0, 1.0]  # row 1: wrong answer and no explanation (it fails to grade)
KEYS = ["rftgrade_error", "rftgrade_exact", "rftgrade_sim", "score"]


def test_verl_reward_managers() -> None:
    result = run("verl_check.py")
    # The reward loop (verl 0.9's trainer), sync and async functions, and the remote manager's Ray actors.
    for name in (
        "loop/naive/compute_score",
        "loop/naive/compute_score_async",
        "loop/dapo/compute_score",
        "loop/remote/compute_score",
        "server/loop/naive",
        "server/loop/naive_async",
    ):
        assert result[name]["scores"] == EXPECTED, name
        # verl takes the extra keys from the first sample: the failed one has them all.
        assert result[name]["keys"] == [KEYS] * 4, name
        assert result[name]["errors"] == [0.0, 1.0, 0.0, 0.0], name
    # The legacy managers: sync calls (naive, dapo), plural (batch), positional in a process pool (prime).
    for name in ("legacy/naive", "legacy/dapo", "legacy/batch", "legacy/prime", "server/legacy/batch"):
        assert result[name]["scores"] == EXPECTED, name
        if name != "legacy/prime":  # prime keeps numbers only
            assert result[name]["extra_lengths"] == dict.fromkeys(["score", *KEYS[:3]], 4), name
    # The traps the sync compute_score avoids, reproduced on verl's own code.
    assert result["trap/legacy_naive_async"].startswith("TypeError")
    assert result["trap/remote_async"].startswith("AssertionError: Async reward score is not supported")
    # Batch form: one request for the batch; the reward loop's concurrent calls gathered too.
    assert result["server/batch_requests"] == 1
    assert result["server/loop_requests"] == 1


def test_openrlhf_remote_reward_client() -> None:
    result = run("openrlhf_check.py")
    # The trap: OpenRLHF sends no headers, so a server behind --api-key refuses the bearer route...
    assert result["bearer_route"] == [None, {}]
    assert "401" in result["_output"]
    # ...and takes the token in the path. The query ends in <|im_end|> (decoded with
    # special tokens kept): stripped, the JSON answer parses.
    assert result["token_route"] == [[1.0], {"rftgrade_error": [0.0]}]
    assert result["wrong_answer"] == [[0.0], {"rftgrade_error": [0.0]}]
    assert result["custom_token"] == [[1.0], {"rftgrade_error": [0.0]}]  # rftgrade serve --strip-tokens [END]
    # A JSON-object label (or its text) is the item: {{ item.reference_explanation }} resolves.
    assert result["label_object"] == result["label_json_text"] == [[1.0], {"rftgrade_error": [0.0]}]
    assert result["label_plain"] == [[0.0], {"rftgrade_error": [1.0]}]


@pytest.mark.parametrize("trl_version", ["1.16.0", "1.8.0"])
def test_trl_grpo_trainer(trl_version: str) -> None:
    old = str(VENV / "trl-1.8") if trl_version == "1.8.0" else None
    result = run("trl_check.py", extra_path=old)
    assert result["trl"] == trl_version
    name = result["grader_name"]
    assert result["name"] == name
    # Two steps, in-process and through rftgrade serve (one request per reward call);
    # TRL logs the reward under the grader's name and it is the grader's own reward.
    means = [e[f"rewards/{name}/mean"] for e in result["in_process"] if f"rewards/{name}/mean" in e]
    assert means == pytest.approx(result["own_means"]) and len(means) == 2
    served = [e["rewards/served/mean"] for e in result["server"] if "rewards/served/mean" in e]
    assert len(served) == 2 and result["server_requests"] == result["server_calls"] == 2
    if trl_version == "1.8.0":
        # The trap on TRL < 1.9: a bare functools.partial has no __name__.
        assert result["bare_partial"].startswith("AttributeError") and "__name__" in result["bare_partial"]


def test_verifiers_task_scoring() -> None:
    result = run("verifiers_check.py")
    name = result["grader_name"]
    # A class-attribute reward (named after the grader), a reward plugged by import path
    # (weight 2 from the task config), and one through rftgrade serve (one request for the
    # four rollouts scored at once).
    assert [r[name] for r in result["in_process"]] == EXPECTED
    assert [r["graded"] for r in result["plugged"]] == EXPECTED
    assert [r["total"] for r in result["plugged"]] == [2 * x for x in EXPECTED]
    assert [r["g"] for r in result["server"]] == EXPECTED and result["server_requests"] == 1
    assert "resources" not in result["_output"]  # the item is the task's content, not its runtime fields


def test_trl_async_trainer_spawned_reward() -> None:
    # AsyncGRPOTrainer needs a vLLM server (none on CPU); what it does with the reward
    # function is run here: pickled into a spawned child, named and called by TRL's helpers.
    result = run("trl_spawn_check.py")
    assert result["name"] == "answer_and_explanation" and result["async"] is True
    assert result["rewards"][0] == 1.0 and result["rewards"][1] < 0.5


def test_exported_dataset_in_verl_trl_openrlhf() -> None:
    # `rftgrade export dataset` on rows whose items differ in shape; the reward encodes a
    # fingerprint of the item the grader was handed: equal rewards, the same item.
    result = run("dataset_check.py")
    own = result["own"]
    for suffix in ("parquet", "jsonl"):
        verl = result[f"verl/{suffix}"]  # read by verl's RLHFDataset, scored by its reward loop
        assert verl["scores"] == own, suffix
        assert verl["errors"] == [0.0, 0.0, 0.0], suffix
        assert verl["raw_prompts"][0][0] == {"role": "system", "content": "Answer with the number only."}
        assert verl["raw_prompts"][2] == [{"role": "user", "content": "Say seven as a digit."}]
    # TRL: one GRPOTrainer step on the file loaded with `datasets`; the reward TRL logged
    # is the grader's own on the original rows, for the completions TRL generated.
    assert result["trl"]["columns"] == ["prompt", "rftgrade_item"]
    assert result["trl/items_exact"] is True
    assert result["trl"]["logged_means"] == [pytest.approx(result["trl/own_mean"], abs=1e-6)]
    # OpenRLHF: its PromptDataset reads the file (the label column is the item's text) and
    # its agent executor asks rftgrade serve for each prompt's reward.
    assert result["openrlhf/columns"] == ["item", "messages"] and result["openrlhf/labels_exact"] is True
    assert result["openrlhf/scores"] == own
    # The trap: the item's fields as columns of their own load with datasets 5, but
    # the string "42" comes back the number 42.
    assert result["trap/item_columns"] == "int"


def test_reasoning_model_completions_in_verl_and_openrlhf() -> None:
    # Qwen3's <think> and gpt-oss's harmony channels, decoded by verl (special tokens
    # skipped) and by OpenRLHF (kept): the grader gets the final answer, as at OpenAI.
    strip = run("reasoning_check.py", "strip")
    # The texts rftgrade is handed differ by trainer; harmony's markers go with verl's decode.
    assert "analysisWe need" in strip["decoded/skip_special"] and "</think>" in strip["decoded/skip_special"]
    assert "<|channel|>final<|message|>" in strip["decoded/kept"]
    for path in ("verl/qwen3", "verl/gpt_oss", "openrlhf/qwen3", "openrlhf/gpt_oss"):
        assert strip[path] == strip["own"], path
    # Kept, the reasoning goes to the grader with the answer: the answer's half is lost.
    keep = run("reasoning_check.py", "keep")
    for path in ("verl/qwen3", "verl/gpt_oss", "openrlhf/qwen3", "openrlhf/gpt_oss"):
        assert keep[path] == [pytest.approx(r - 0.5 if r > 0.5 else r) for r in keep["own"]], path


def test_exported_config_runs_in_verl_trl_openrlhf() -> None:
    # `rftgrade export config` on a job with every hyperparameter, its files run by the
    # trainers' own entry points (paths with a space and a comma in them).
    result = run("config_check.py")
    verl = result["verl/values"]  # verl's config as Hydra composed it from the script
    assert verl["adv_estimator"] == "grpo" and verl["n"] == 2
    assert verl["train_batch_size"] == verl["ppo_mini_batch_size"] == 3  # batch_size: prompts a step
    assert verl["total_epochs"] == 2 and verl["test_freq"] == 5 and verl["seed"] == 7
    assert verl["val_n"] == 4 and verl["val_do_sample"] is True
    assert verl["reasoning_effort"] == "low"
    assert verl["lr"] == pytest.approx(2 * result["verl/default_lr"])  # the multiplier, on verl's own default
    assert " " in verl["train_files"] and verl["train_files"].endswith("train-verl.jsonl")
    assert result["verl/ray_env"]["RFTGRADE_GRADER"].endswith("job.json")
    # verl's reward manager, built from the composed config in the Ray workers' environment.
    assert result["verl/scores"] == result["own"]
    # TRL: `trl grpo --config FILE` trained a step; what it logged is the grader's reward.
    trl = result["trl/config"]
    assert (
        trl["per_device_train_batch_size"] * trl["gradient_accumulation_steps"] == 3 * trl["num_generations"]
    )
    # The job's response_format: TRL's own parser reads the regex rftgrade wrote, and
    # xgrammar (vLLM's structured-output backend) lets through the schema's answers alone.
    from rftgrade.integrations.structured_output import schema_regex

    assert result["trl/regex"] == schema_regex(result["response_format"])
    assert result["trl/accepted"] == {
        "compact": True, "spaced": True, "missing": False, "reordered": False, "prose": False
    }  # fmt: skip
    logged = result["trl/logged"]
    assert len(logged) == 1 and float(logged[0]["learning_rate"]) == pytest.approx(
        2 * result["trl/default_lr"]
    )
    assert float(logged[0]["rewards/grader_reward/mean"]) == pytest.approx(
        result["trl/own_noise_mean"], abs=5e-4
    )
    # OpenRLHF: its parser and checks took the script's flags; its reward client reached the
    # server the script started, with each exported row's label.
    args = result["openrlhf/args"]
    assert args["rollout.batch_size"] == 3 and args["rollout.n_samples_per_prompt"] == 2
    assert args["train.batch_size"] == 6 and args["train.num_episodes"] == 2 and args["train.seed"] == 7
    assert args["algo.advantage.estimator"] == "group_norm"
    assert args["actor.adam.lr"] == pytest.approx(2 * result["openrlhf/default_lr"])
    assert args["eval.steps"] == 5 and args["eval.n_samples_per_prompt"] == 4
    assert result["openrlhf/url"] == f"http://127.0.0.1:{result['openrlhf/port']}/v1/openrlhf/reward"
    assert result["openrlhf/rewards"] == result["own"]
    # The base rate the multiplier scales is each trainer's default.
    from rftgrade.integrations.job_settings import BASE_LEARNING_RATE

    assert (
        result["verl/default_lr"]
        == result["trl/default_lr"]
        == result["openrlhf/default_lr"]
        == BASE_LEARNING_RATE
    )


def test_tool_calls_in_verl_and_openrlhf_as_verls_own_parsers_read_them() -> None:
    # A function-calling dataset: Qwen3's <tool_call> blocks and gpt-oss's harmony calls,
    # decoded by verl (special tokens skipped) and by OpenRLHF (kept), are graded as the
    # output_tools OpenAI's grader saw; verl's own tool parsers find the same calls.
    parse = run("tool_calls_check.py", "parse")
    assert parse["own"] == [1.0, 1.0, 0.5]
    for path in (f"{t}/{f}" for t in ("verl", "openrlhf") for f in ("qwen3", "gpt_oss", "qwen3_coder")):
        assert parse[path] == parse["own"], path
    # verl's dataset read each prompt with the row's tools in its system turn.
    assert len(parse["verl/system_turns"]) == 3
    assert all("<tools>\n" in turn and '"name": "get_time"' in turn for turn in parse["verl/system_turns"])
    calls = [[call] for call in parse["calls"]]
    assert parse["verl_parsers"] == {"hermes": calls, "gpt-oss": calls, "qwen3_coder": calls}
    for decoded, found in parse["rftgrade"].items():
        assert found == calls, decoded
    # Kept as text, no call is read: every reward is lost.
    keep = run("tool_calls_check.py", "keep")
    for path in (f"{t}/{f}" for t in ("verl", "openrlhf") for f in ("qwen3", "gpt_oss", "qwen3_coder")):
        assert keep[path] == [0.0, 0.0, 0.0], path
