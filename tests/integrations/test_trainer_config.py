"""``rftgrade export config``: an OpenAI RFT job's hyperparameters as verl's, TRL's or
OpenRLHF's launch file, checked against what OpenAI accepts. (The trainers' own entry
points running these files: ``test_real_trainers.py::test_exported_config_runs_in_verl_trl_openrlhf``.)"""

from __future__ import annotations

import asyncio
import json
import shlex
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from rftgrade._exceptions import DataError
from rftgrade._forms import read_grader_source
from rftgrade.cli.main import app
from rftgrade.integrations import trl as trl_adapter
from rftgrade.integrations.job_settings import job_settings
from rftgrade.integrations.trainer_config import RunSetup, _hydra, _yaml_value, trainer_config

from ..conftest import EXAMPLES

JOB_DIR = EXAMPLES / "openai_rft_job"
JOB = json.loads((JOB_DIR / "job.json").read_text())


def job_with(**hyper: Any) -> dict[str, Any]:
    job = json.loads(json.dumps(JOB))
    job["method"]["reinforcement"]["hyperparameters"] = hyper
    return job


def made(tmp_path: Path, trainer: str, job: dict[str, Any], *extra: str) -> tuple[Any, Path]:
    path = tmp_path / "job.json"
    path.write_text(json.dumps(job))
    train = tmp_path / "train.jsonl"
    if not train.exists():
        train.write_text("{}\n" * 20)
    out = tmp_path / f"out-{trainer}"
    args = [
        "export",
        "config",
        str(path),
        "--trainer",
        trainer,
        "--model",
        "Qwen/Qwen3-8B",
        "--train",
        str(train),
    ]
    result = CliRunner().invoke(app, [*args, "-o", str(out), *extra])
    return result, out


def config_args(trainer: str, train: Path) -> list[str]:
    """``rftgrade export config`` of the example job, printed (no ``-o``)."""
    return [
        "export",
        "config",
        str(JOB_DIR / "job.json"),
        "--trainer",
        trainer,
        "--model",
        "m",
        "--train",
        str(train),
    ]


def command_args(script: str, marker: str) -> list[str]:
    """The arguments of the script's ``marker`` command, as bash would split them."""
    start = script.index(marker)
    tokens = shlex.split(script[start:].replace("\\\n", " "))
    return tokens[len(shlex.split(marker)) : tokens.index("$@")]


def test_the_example_jobs_settings() -> None:
    settings = job_settings(read_grader_source(JOB_DIR / "job.json"))
    assert (settings.batch_size, settings.n_epochs, settings.eval_interval, settings.eval_samples) == (
        16,
        2,
        5,
        4,
    )
    assert settings.reasoning_effort == "medium" and settings.compute_multiplier == 1.0
    assert settings.seed == 42 and settings.model == "o4-mini-2025-04-16" and settings.response_format


def test_auto_and_default_carry_nothing() -> None:
    job = job_with(
        batch_size="auto", n_epochs="auto", learning_rate_multiplier="auto", reasoning_effort="default"
    )
    settings = job_settings(read_grader_source(job))
    assert settings.batch_size is None and settings.n_epochs is None
    assert settings.learning_rate_multiplier is None and settings.reasoning_effort is None


def test_a_job_object_with_nulls_carries_what_it_sets() -> None:
    job = job_with(batch_size=8, n_epochs=None, eval_interval=None, reasoning_effort=None)
    job |= {"id": "ftjob-abc", "object": "fine_tuning.job", "status": "succeeded"}
    settings = job_settings(read_grader_source(job))
    assert settings.batch_size == 8 and settings.n_epochs is None and settings.reasoning_effort is None


def test_every_value_openai_would_refuse_is_named_with_its_field() -> None:
    job = job_with(
        batch_size=300,
        n_epochs="2",
        learning_rate_multiplier=-1,
        compute_multiplier=0,
        eval_samples=0,
        reasoning_effort="extreme",
        batch_sise=8,
    )
    job["seed"] = "seven"
    with pytest.raises(DataError) as caught:
        job_settings(read_grader_source(job))
    text = str(caught.value)
    where = "method.reinforcement.hyperparameters"
    assert f'{where}.batch_size: 300 is not "auto" or an integer from 1 to 256' in text
    assert f'{where}.n_epochs: "2" is not' in text  # a string is not an integer, as OpenAI's API says
    assert f"{where}.learning_rate_multiplier: -1 is not" in text
    assert f"{where}.compute_multiplier: 0 is not" in text
    assert f"{where}.eval_samples: 0 is not" in text
    assert f'{where}.reasoning_effort: "extreme" is not "default", "low", "medium" or "high"' in text
    assert f"{where}.batch_sise: not a reinforcement hyperparameter; did you mean `batch_size`?" in text
    assert 'seed: "seven" is not an integer' in text


def test_the_reinforcement_block_names_its_own_path() -> None:
    block = {"grader": JOB["method"]["reinforcement"]["grader"], "hyperparameters": {"n_epochs": 99}}
    with pytest.raises(DataError, match=r"^hyperparameters\.n_epochs: 99 is not"):
        job_settings(read_grader_source(block))


def test_verl_script(tmp_path: Path) -> None:
    result, out = made(tmp_path, "verl", job_with(batch_size=16, n_epochs=3, learning_rate_multiplier=3.0))
    assert result.exit_code == 0, result.output
    script = out.read_text()
    assert script.startswith("#!/usr/bin/env bash\n") and out.stat().st_mode & 0o111
    args = dict(a.split("=", 1) for a in command_args(script, "python3 -m verl.trainer.main_ppo"))
    assert args["data.train_batch_size"] == args["actor_rollout_ref.actor.ppo_mini_batch_size"] == "16"
    assert args["trainer.total_epochs"] == "3"
    assert args["actor_rollout_ref.actor.optim.lr"] == "3e-06"  # not 3.0000000000000004e-06
    assert args["actor_rollout_ref.rollout.n"] == "8" and args["algorithm.adv_estimator"] == "grpo"
    assert args["+ray_kwargs.ray_init.runtime_env.env_vars.RFTGRADE_GRADER"] == str(
        (tmp_path / "job.json").resolve()
    )
    assert args["reward.custom_reward_function.path"].endswith("rftgrade/integrations/verl.py")
    assert "trainer.test_freq" not in args  # no --val: no evaluation
    assert "learning_rate_multiplier 3 -> actor_rollout_ref.actor.optim.lr=3e-06" in result.output
    assert "eval" not in " ".join(args)


def test_verl_evaluation_needs_a_validation_file(tmp_path: Path) -> None:
    val = tmp_path / "val.jsonl"
    val.write_text("{}\n")
    result, out = made(tmp_path, "verl", job_with(eval_interval=5, eval_samples=4), "--val", str(val))
    assert result.exit_code == 0, result.output
    args = dict(a.split("=", 1) for a in command_args(out.read_text(), "python3 -m verl.trainer.main_ppo"))
    assert args["trainer.test_freq"] == "5" and args["data.val_files"] == str(val.resolve())
    assert args["actor_rollout_ref.rollout.val_kwargs.n"] == "4"
    assert args["actor_rollout_ref.rollout.val_kwargs.do_sample"] == "true"  # else n greedy copies


def test_trl_yaml_reads_back_as_the_values(tmp_path: Path) -> None:
    result, out = made(
        tmp_path, "trl", job_with(batch_size=4, learning_rate_multiplier=2.0, n_epochs=1), "-n", "4"
    )
    assert result.exit_code == 0, result.output
    config = yaml.safe_load(out.read_text())
    assert config["learning_rate"] == 2e-06 and type(config["learning_rate"]) is float
    assert config["num_generations"] == config["per_device_train_batch_size"] == 4
    assert config["gradient_accumulation_steps"] == 4  # 4 prompts x 4 completions a step
    assert config["reward_funcs"] == ["rftgrade.integrations.trl.grader_reward"]
    assert config["env"] == {"RFTGRADE_GRADER": str((tmp_path / "job.json").resolve())}
    assert config["datasets"] == [
        {"path": "json", "data_files": str((tmp_path / "train.jsonl").resolve()), "split": "train"}
    ]


def test_openrlhf_script(tmp_path: Path) -> None:
    result, out = made(tmp_path, "openrlhf", job_with(batch_size=16, n_epochs=2), "-n", "4", "--port", "8123")
    assert result.exit_code == 0, result.output
    script = out.read_text()
    flags = command_args(script, "python3 -m openrlhf.cli.train_ppo_ray")
    assert "--data.apply_chat_template" in flags
    assert flags[flags.index("--rollout.batch_size") + 1] == "16"
    assert flags[flags.index("--train.batch_size") + 1] == "64"  # 16 prompts x 4 samples: one update a batch
    assert flags[flags.index("--reward.remote_url") + 1] == "http://127.0.0.1:8123/v1/openrlhf/reward"
    assert flags[flags.index("--algo.advantage.estimator") + 1] == "group_norm"
    assert f"--grader math_answer={(tmp_path / 'job.json').resolve()}" in script.replace("'", "")
    assert "--port 8123" in script


def test_a_small_dataset_is_named_before_a_run_with_no_steps(tmp_path: Path) -> None:
    (tmp_path / "train.jsonl").write_text("{}\n" * 4)
    result, _ = made(tmp_path, "verl", job_with(batch_size=16))
    assert result.exit_code == 0
    assert "batch_size 16 is more prompts than" in result.output and "(4)" in result.output


def test_a_bare_grader_says_nothing_was_carried(tmp_path: Path) -> None:
    result, out = made(tmp_path, "trl", JOB["method"]["reinforcement"]["grader"])
    assert result.exit_code == 0, result.output
    assert "the file is a grader, not a job" in result.output
    assert "gradient_accumulation_steps" not in out.read_text()


def test_bad_command_lines(tmp_path: Path) -> None:
    result, _ = made(tmp_path, "axolotl", JOB)
    assert result.exit_code == 2 and "--trainer 'axolotl' is not one of: verl, trl, openrlhf" in result.output
    result, _ = made(tmp_path, "verl", job_with(batch_size=0))
    assert result.exit_code == 2
    assert "method.reinforcement.hyperparameters.batch_size: 0 is not" in result.output
    missing = tmp_path / "nowhere.jsonl"
    result = CliRunner().invoke(app, config_args("trl", missing))
    assert result.exit_code == 2
    assert f"--train {missing}: no such file; write it with `rftgrade export dataset" in result.output
    result = CliRunner().invoke(app, ["export", "config", str(JOB_DIR / "job.json"), "--trainer", "trl"])
    assert result.exit_code == 2 and "--model" in result.output


def test_an_invalid_grader_gets_no_launch_file(tmp_path: Path) -> None:
    job = json.loads(json.dumps(JOB))
    job["method"]["reinforcement"]["grader"]["calculate_output"] = "0.8 * exact + 0.2 * show_work"
    result, out = made(tmp_path, "verl", job)
    assert result.exit_code == 2 and not out.exists()
    assert "show_work" in result.output and "the grader is invalid" in result.output


def test_printed_without_an_out_file(tmp_path: Path) -> None:
    train = tmp_path / "t.jsonl"
    train.write_text("{}\n")
    args = config_args("trl", train)
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0
    assert yaml.safe_load(result.stdout)["model_name_or_path"] == "m"


@pytest.mark.parametrize(
    ("value", "written"),
    [
        ("/data/train.jsonl", "/data/train.jsonl"),
        ("Qwen/Qwen3-8B", "Qwen/Qwen3-8B"),
        ("/my data/a,b.jsonl", "'/my data/a,b.jsonl'"),
        ("it's", "'it\\'s'"),
        ("true", "'true'"),
        ("1.5", "'1.5'"),
        (True, "true"),
        (2e-06, "2e-06"),
    ],
)
def test_hydra_values(value: Any, written: str) -> None:
    assert _hydra(value) == written


def test_yaml_floats_stay_floats() -> None:
    for value in (2e-06, 1e20, 0.5, 3.0):
        assert yaml.safe_load(_yaml_value(value)) == value
        assert type(yaml.safe_load(_yaml_value(value))) is float


def test_unknown_trainer_in_the_library() -> None:
    setup = RunSetup(model="m", grader=Path("/g.json"), train=Path("/t.jsonl"))
    with pytest.raises(DataError, match="not one of"):
        trainer_config(read_grader_source(JOB), setup, "axolotl", verl_adapter="x", made_by="y")


def test_trl_grader_reward_reads_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RFTGRADE_GRADER", str(JOB_DIR / "job.json"))
    monkeypatch.setattr(trl_adapter, "_ENV_SOURCE", None)
    row = json.loads((JOB_DIR / "train.jsonl").read_text().splitlines()[0])
    answer = json.dumps({"reasoning": f"uses {row['key_quantity']}", "answer": row["answer"]})
    rewards = asyncio.run(
        trl_adapter.grader_reward(["q", "q"], [answer, "not json"], rftgrade_item=[json.dumps(row)] * 2)
    )
    assert rewards[0] == pytest.approx(1.0)
    assert rewards[1] is None or rewards[1] == 0.0


def test_trl_grader_reward_without_a_grader_says_how(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RFTGRADE_GRADER", raising=False)
    monkeypatch.delenv("RFTGRADE_SERVER_URL", raising=False)
    monkeypatch.setattr(trl_adapter, "_ENV_SOURCE", None)
    with pytest.raises(Exception, match="RFTGRADE_GRADER"):
        asyncio.run(trl_adapter.grader_reward(["q"], ["a"]))


def test_validate_names_a_hyperparameter_openai_would_refuse(tmp_path: Path) -> None:
    path = tmp_path / "job.json"
    path.write_text(json.dumps(job_with(batch_size=16, n_epoch=2)))
    result = CliRunner().invoke(app, ["validate", str(path), "--json"])
    assert result.exit_code == 1
    findings = json.loads(result.stdout)
    assert {
        "level": "error",
        "path": "method.reinforcement.hyperparameters.n_epoch",
        "message": "not a reinforcement hyperparameter; did you mean `n_epochs`?",
    }.items() <= findings[0].items()
    assert CliRunner().invoke(app, ["validate", str(JOB_DIR / "job.json")]).exit_code == 0


def test_a_line_break_in_a_path_runs_nothing(tmp_path: Path) -> None:
    # The path is in the file's comments and its arguments: bash must run only the trainer.
    odd = tmp_path / "a\ntouch PWNED"
    odd.mkdir()
    (odd / "train.jsonl").write_text("{}\n")
    result, out = made(odd, "verl", JOB)
    assert result.exit_code == 0, result.output
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "python3").write_text('#!/bin/sh\nprintf "%s\\0" "$@" > "$ARGS_OUT"\n')
    (fake / "python3").chmod(0o755)
    env = {"PATH": f"{fake}:/usr/bin:/bin", "ARGS_OUT": str(tmp_path / "args")}
    subprocess.run(["bash", str(out)], cwd=tmp_path, env=env, check=True)
    assert not (tmp_path / "PWNED").exists()
    args = (tmp_path / "args").read_text().split("\0")
    assert f"data.train_files='{(odd / 'train.jsonl').resolve()}'" in args


def test_a_long_prompt_is_named_against_the_trainers_length(tmp_path: Path) -> None:
    long_row = {"prompt": [{"role": "user", "content": "word " * 400}]}  # ~500 tokens
    (tmp_path / "train.jsonl").write_text(json.dumps(long_row) + "\n" + '{"prompt": []}\n' * 20)
    result, _ = made(tmp_path, "verl", JOB)
    assert "the longest prompt of" in result.output and "is about 501 tokens" in result.output
    assert "data.max_prompt_length is 512 unless set" in result.output
    result, _ = made(tmp_path, "openrlhf", JOB)  # 2048 a sequence: 501 is far from it
    assert "the longest prompt of" not in result.output
    (tmp_path / "train.jsonl").write_text('{"prompt": [{"role": "user", "content": "hi"}]}\n' * 20)
    result, _ = made(tmp_path, "verl", JOB)
    assert "the longest prompt of" not in result.output
