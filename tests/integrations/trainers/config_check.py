"""``rftgrade export config`` files run by the trainers' own entry points (run with the
trainers' venv).

An OpenAI RFT job (dataset_check's python grader, which rewards half for the answer
and adds a fingerprint of the item it is handed; hyperparameters of every kind) and
its rows, exported with ``rftgrade export dataset``, then:

- verl: the written script runs ``python3 -m verl.trainer.main_ppo`` with Hydra's
  ``--cfg job``, which composes verl's own config with the script's overrides and
  prints it; verl's ``validate_config`` checks it, and the reward manager the composed
  config names (with the environment its Ray workers would get) scores the rows;
- TRL: ``trl grpo --config FILE`` trains one step on a tiny random model saved to disk;
- OpenRLHF: the written script starts ``rftgrade serve`` and runs OpenRLHF's command
  line (``openrlhf_entry.py``: its own parser and checks, its dataset and reward
  client, without the GPU training).

Each trainer's default learning rate is read from the trainer itself. Prints one RESULT line.
"""

from __future__ import annotations

import ast
import json
import os
import re
import socket
import stat
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml
from _common import emit
from dataset_check import GRADER, ROWS, export, verl_scores

VENV_BIN = Path(sys.executable).parent
HERE = Path(__file__).resolve().parent
JOB: dict[str, Any] = {
    "model": "o4-mini-2025-04-16",
    "training_file": "file-train",
    "validation_file": "file-valid",
    "seed": 7,
    "method": {
        "type": "reinforcement",
        "reinforcement": {
            "grader": GRADER,
            # OpenAI sampled under it; TRL's file carries it as vLLM's regex.
            "response_format": {
                "type": "json_schema",
                "json_schema": {
                    "name": "answer",
                    "strict": True,
                    "schema": {
                        "type": "object",
                        "properties": {"answer": {"type": "string"}, "confidence": {"type": "number"}},
                        "required": ["answer", "confidence"],
                        "additionalProperties": False,
                    },
                },
            },
            "hyperparameters": {
                "batch_size": 3,
                "n_epochs": 2,
                "learning_rate_multiplier": 2.0,
                "eval_interval": 5,
                "eval_samples": 4,
                "reasoning_effort": "low",
                "compute_multiplier": 1.0,
            },
        },
    },
}


def rftgrade(*args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "rftgrade", *args], capture_output=True, text=True, check=False
    )
    if done.returncode:
        raise SystemExit(f"rftgrade {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


def config(job: Path, trainer: str, train: Path, out: Path, *extra: str) -> str:
    return rftgrade(
        "export", "config", str(job), "--trainer", trainer, "--model", str(out.parent / "model"),
        "--train", str(train), "-n", "2", "-o", str(out), *extra,
    )  # fmt: skip


def run(cmd: list[str], path: str, timeout: int = 400) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATH": path + os.pathsep + os.environ["PATH"]}
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout, check=False)
    if done.returncode:
        raise SystemExit(f"{cmd} failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-5000:]}")
    return done


def verl_part(tmp: Path, job: Path, own: list[float]) -> dict[str, Any]:
    from omegaconf import OmegaConf
    from verl.trainer.ppo.utils import need_critic, need_reference_policy
    from verl.utils.config import validate_config

    from rftgrade.testing.tiny_lm import tiny_tokenizer

    train, valid, script = tmp / "train-verl.jsonl", tmp / "valid-verl.jsonl", tmp / "train-verl.sh"
    export(tmp / "train.jsonl", "verl", train)
    export(tmp / "valid.jsonl", "verl", valid)
    config(job, "verl", train, script, "--val", str(valid))
    # Hydra's --cfg job: verl's config with the script's overrides, printed instead of run;
    # the GPU count is the team's (one here, so verl's batch checks hold on this machine).
    printed = run(["bash", str(script), "trainer.n_gpus_per_node=1", "--cfg", "job"], str(VENV_BIN)).stdout
    cfg = OmegaConf.create(printed)
    validate_config(cfg, need_reference_policy(cfg), need_critic(cfg))
    defaults = OmegaConf.create(
        run([sys.executable, "-m", "verl.trainer.main_ppo", "--cfg", "job"], str(VENV_BIN)).stdout
    )
    ray_env = OmegaConf.to_container(cfg.ray_kwargs.ray_init.runtime_env.env_vars)
    assert isinstance(ray_env, dict)
    saved = {k: os.environ.pop(k, None) for k in ("RFTGRADE_GRADER", "RFTGRADE_SERVER_URL")}
    os.environ.update({str(k): str(v) for k, v in ray_env.items()})  # what Ray gives each worker
    try:
        import rftgrade.integrations.verl as adapter

        adapter._STATE = None
        scores = verl_scores(train, tiny_tokenizer(), OmegaConf.to_container(cfg, resolve=False))
    finally:
        for key, value in saved.items():
            if value is not None:
                os.environ[key] = value
    rollout = cfg.actor_rollout_ref.rollout
    return {
        "verl/values": {
            "adv_estimator": cfg.algorithm.adv_estimator,
            "train_batch_size": cfg.data.train_batch_size,
            "ppo_mini_batch_size": cfg.actor_rollout_ref.actor.ppo_mini_batch_size,
            "n": rollout.n,
            "total_epochs": cfg.trainer.total_epochs,
            "lr": cfg.actor_rollout_ref.actor.optim.lr,
            "test_freq": cfg.trainer.test_freq,
            "val_n": rollout.val_kwargs.n,
            "val_do_sample": rollout.val_kwargs.do_sample,
            "seed": cfg.data.seed,
            "reasoning_effort": cfg.data.apply_chat_template_kwargs.reasoning_effort,
            "train_files": cfg.data.train_files,
            "val_files": cfg.data.val_files,
            "model": cfg.actor_rollout_ref.model.path,
        },
        "verl/ray_env": ray_env,
        "verl/scores": scores["scores"],
        "verl/own": own,
        "verl/default_lr": defaults.actor_rollout_ref.actor.optim.lr,
    }


def trl_part(tmp: Path, job: Path, own_noise: float) -> dict[str, Any]:
    from trl import GRPOConfig

    from rftgrade.testing.tiny_lm import tiny_causal_lm

    model, tokenizer = tiny_causal_lm(seed=0)
    model.save_pretrained(tmp / "model")
    tokenizer.save_pretrained(tmp / "model")
    train, cfg = tmp / "train-trl.jsonl", tmp / "train-trl.yaml"
    export(tmp / "train.jsonl", "trl", train)
    config(job, "trl", train, cfg)
    # The file as written, and what a CPU run of one step needs on top (the team's hardware).
    cpu = ["--max_steps", "1", "--use_cpu", "true", "--bf16", "false", "--report_to", "none",
           "--save_strategy", "no", "--max_completion_length", "4", "--logging_steps", "1",
           "--output_dir", str(tmp / "trl-out")]  # fmt: skip
    done = run([str(VENV_BIN / "trl"), "grpo", "--config", str(cfg), *cpu], str(VENV_BIN), timeout=500)
    logs = [ast.literal_eval(m) for m in re.findall(r"\{'loss'[^}]*\}", done.stdout + done.stderr)]
    return {
        **trl_structured(cfg, cpu),
        "trl/config": yaml.safe_load(cfg.read_text()),
        "trl/logged": logs,
        "trl/own_noise_mean": own_noise,
        "trl/default_lr": GRPOConfig.__dataclass_fields__["learning_rate"].default,
    }


def trl_structured(cfg: Path, extra: list[str]) -> dict[str, Any]:
    """The regex as TRL's own command line reads it, and as xgrammar (vLLM's default
    structured-output backend) compiles it: which answers it lets vLLM write."""
    import xgrammar
    from trl.scripts.grpo import make_parser
    from xgrammar.testing import _is_grammar_accept_string

    _, args, _, _ = make_parser().parse_args_and_config(["--config", str(cfg), *extra])
    regex = args.vllm_structured_outputs_regex
    grammar = xgrammar.Grammar.from_regex(regex)
    answers = {
        "compact": '{"answer":"42","confidence":0.9}',
        "spaced": '{"answer": "6 x 7 = \\"42\\"", "confidence": 1}',
        "missing": '{"answer": "42"}',
        "reordered": '{"confidence": 0.9, "answer": "42"}',
        "prose": "The answer is 42.",
    }
    return {
        "trl/regex": regex,
        "trl/accepted": {name: _is_grammar_accept_string(grammar, text) for name, text in answers.items()},
    }


def openrlhf_part(tmp: Path, job: Path) -> dict[str, Any]:
    train, valid, script = tmp / "train-openrlhf.jsonl", tmp / "valid-openrlhf.jsonl", tmp / "run-openrlhf.sh"
    export(tmp / "train.jsonl", "openrlhf", train)
    export(tmp / "valid.jsonl", "openrlhf", valid)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config(job, "openrlhf", train, script, "--val", str(valid), "--port", str(port))
    # What the script calls: `rftgrade` (this checkout) and OpenRLHF's command line.
    shims = tmp / "bin"
    shims.mkdir()
    py = sys.executable
    (shims / "rftgrade").write_text(f'#!/bin/sh\nexec {py} -m rftgrade "$@"\n')
    (shims / "python3").write_text(
        "#!/bin/sh\n"
        'if [ "$1" = -m ] && [ "$2" = openrlhf.cli.train_ppo_ray ]; then shift 2; '
        f'exec {py} {HERE / "openrlhf_entry.py"} "$@"; fi\n'
        f'exec {py} "$@"\n'
    )
    for shim in shims.iterdir():
        shim.chmod(shim.stat().st_mode | stat.S_IEXEC)
    # The GPU count is the team's: one here, so OpenRLHF's batch checks hold on this machine.
    done = run(["bash", str(script), "--actor.num_gpus_per_node", "1"], str(shims))
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    parsed = json.loads(lines[-1][len("RESULT ") :])
    return {"openrlhf/" + key: value for key, value in parsed.items()} | {
        "openrlhf/port": port,
        "openrlhf/default_lr": _openrlhf_default_lr(),
    }


def _openrlhf_default_lr() -> float:
    """``--actor.adam.lr``'s default, from OpenRLHF's parser (run with no arguments)."""
    from openrlhf_entry import main_block

    tree = main_block()
    parsers = [n for n in tree.body if not (isinstance(n, ast.Expr) and "train(" in ast.unparse(n))]
    upto = next(i for i, n in enumerate(parsers) if "parse_args" in ast.unparse(n))
    namespace: dict[str, Any] = {}
    exec("import argparse, os\nfrom datetime import datetime", namespace)
    exec(compile(ast.Module(body=parsers[:upto], type_ignores=[]), "train_ppo_ray.py", "exec"), namespace)
    return float(namespace["parser"].get_default("actor.adam.lr"))


def main() -> None:
    from rftgrade import Grader

    # A space and a comma in every path: the files must quote them for bash, Hydra and YAML.
    tmp = Path(tempfile.mkdtemp(prefix="rft config,"))
    (tmp / "train.jsonl").write_text("".join(json.dumps(row) + "\n" for row in ROWS))
    (tmp / "valid.jsonl").write_text(json.dumps(ROWS[0]) + "\n")
    job = tmp / "job.json"
    job.write_text(json.dumps(JOB))
    os.environ["RFTGRADE_SANDBOX"] = "process"
    with Grader(GRADER, sandbox="process") as own:
        answers = ["42", "five", "7"]
        right = [
            round(r.reward, 6)
            for r in own.run_batch([{"sample": a, "item": r} for a, r in zip(answers, ROWS, strict=True)])
        ]
        noise = [r.reward for r in own.run_batch([{"sample": "\u0000noise", "item": r} for r in ROWS])]
    result: dict[str, Any] = {}
    result.update(verl_part(tmp, job, right))
    result.update(trl_part(tmp, job, sum(noise) / len(noise)))
    result.update(openrlhf_part(tmp, job))
    result["own"] = right
    result["response_format"] = JOB["method"]["reinforcement"]["response_format"]
    emit(result)


if __name__ == "__main__":
    sys.exit(main())
