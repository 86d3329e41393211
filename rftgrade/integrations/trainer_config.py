"""An OpenAI RFT job's training settings as a verl, TRL or OpenRLHF run
(``rftgrade export config``).

A job carries ``method.reinforcement.hyperparameters`` (``batch_size``, ``n_epochs``,
``learning_rate_multiplier``, ``eval_interval``, ``eval_samples``,
``reasoning_effort``, ``compute_multiplier``) and a ``seed``. Each trainer spells
them its own way, and some have no open equivalent. :func:`trainer_config` writes
the trainer's own launch file (verl: a script of Hydra overrides for
``verl.trainer.main_ppo``; TRL: a YAML for ``trl grpo --config``; OpenRLHF: a script
that starts ``rftgrade serve`` and runs ``openrlhf.cli.train_ppo_ray``), with the
grader wired in, and says in :attr:`TrainerConfig.mapping` what each setting became
and in :attr:`TrainerConfig.notes` what could not be carried and why, and what the
file sets on its own (verl's required micro-batch sizes): nothing is dropped silently.

Two sizes are the team's to choose: the open model (OpenAI's models have no open
weights) and the samples per prompt (OpenAI does not publish what
``compute_multiplier`` multiplies). OpenAI's ``batch_size`` counts prompts per
step, as verl's ``data.train_batch_size`` and OpenRLHF's ``rollout.batch_size`` do;
the learning rate is the multiplier times 1e-6, the default of all three trainers
(OpenAI's base rate is not published either).
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rftgrade._exceptions import DataError
from rftgrade._forms import GraderSource
from rftgrade.integrations._config_notes import common_notes, file_notes, free_sampling_note, trl_structured
from rftgrade.integrations.job_settings import BASE_LEARNING_RATE, JobSettings, job_settings

__all__ = ["RunSetup", "TrainerConfig", "trainer_config"]


@dataclass(frozen=True)
class RunSetup:
    """What the team chooses for the open run."""

    model: str
    """The open model to train: a hub id or a local path."""
    grader: Path
    """The job (or grader) file, which the trainer's reward reads as it is."""
    train: Path
    """The training rows, from ``rftgrade export dataset --trainer T``."""
    val: Path | None = None
    samples_per_prompt: int = 8
    grader_name: str = "grader"
    """OpenRLHF: the name ``rftgrade serve --grader NAME=FILE`` serves it under."""
    port: int = 8000
    """OpenRLHF: the port of that server, on loopback."""


@dataclass
class TrainerConfig:
    """A trainer's launch file, what each job setting became, and what was not carried."""

    trainer: str
    text: str
    """The file: a bash script (verl, OpenRLHF) or a YAML (TRL)."""
    command: str
    """How to run it."""
    mapping: list[tuple[str, str]] = field(default_factory=list)
    """(the job's setting, what it became in this trainer)."""
    notes: list[str] = field(default_factory=list)


def _learning_rate(multiplier: float) -> float:
    return float(f"{BASE_LEARNING_RATE * multiplier:.6g}")  # 1e-6 x 3 is 3e-06, not 3.0000000000000004e-06


# Each trainer's key for the settings all three have, and what else its mapping line says.
_SHARED: dict[str, dict[str, tuple[str, str]]] = {
    "verl": {
        "n_epochs": ("trainer.total_epochs", ""),
        "learning_rate": ("actor_rollout_ref.actor.optim.lr", ""),
        "seed": ("data.seed", " (the order of the training rows)"),
    },
    "trl": {
        "n_epochs": ("num_train_epochs", ""),
        "learning_rate": ("learning_rate", ""),
        "seed": ("seed", ""),
    },
    "openrlhf": {
        "n_epochs": ("--train.num_episodes", ""),
        "learning_rate": ("--actor.adam.lr", ""),
        "seed": ("--train.seed", ""),
    },
}
_SPELL = {"verl": "{}={}", "trl": "{}: {}", "openrlhf": "{} {}"}
_NAMED = {"verl": "verl's", "trl": "TRL's", "openrlhf": "OpenRLHF's"}


def _carry_shared(
    job: JobSettings, trainer: str, entries: list[tuple[str, Any]], mapping: list[tuple[str, str]]
) -> None:
    """``n_epochs``, the learning rate and ``seed``, into ``entries`` as ``trainer`` spells them."""
    keys, spell = _SHARED[trainer], _SPELL[trainer]
    carried: list[tuple[str, str, Any, str]] = []  # (the job's words, the setting, its value, a remark)
    if job.n_epochs is not None:
        carried.append((f"n_epochs {job.n_epochs}", "n_epochs", job.n_epochs, ""))
    if job.learning_rate_multiplier is not None:
        m = job.learning_rate_multiplier
        remark = f" ({m:g} x {_NAMED[trainer]} default {BASE_LEARNING_RATE:g})"
        carried.append((f"learning_rate_multiplier {m:g}", "learning_rate", _learning_rate(m), remark))
    if job.seed is not None:
        carried.append((f"seed {job.seed}", "seed", job.seed, ""))
    for words, setting, value, remark in carried:
        key, more = keys[setting]
        entries.append((key, value))
        mapping.append(
            (words, spell.format(key, repr(value) if type(value) is float else value) + remark + more)
        )


# -- verl ---------------------------------------------------------------------

_VERL_MICRO_BATCH = 4
_HYDRA_BARE = re.compile(r"[A-Za-z0-9_./\-:~@+]+")


def _hydra(value: Any) -> str:
    """A value in Hydra's override grammar (quoted where the grammar would read it otherwise)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    text = str(value)
    if _HYDRA_BARE.fullmatch(text) and text.lower() not in ("true", "false", "null", "nan", "inf"):
        try:
            float(text)
        except ValueError:
            return text
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _script(lines: Iterable[str], head: list[str]) -> str:
    return "\n".join(["#!/usr/bin/env bash", *head, "set -euo pipefail", *lines]) + "\n"


def _comment(mapping: list[tuple[str, str]], notes: list[str], made_by: str) -> list[str]:
    out = [f"# Made by: {made_by}", "# The job's settings here:"]
    out += [f"#   {setting} -> {became}" for setting, became in mapping]
    if notes:
        out.append("# Not carried over, or to check:")
        out += [f"#   - {note}" for note in notes]
    # A line break in a path or a name would end the comment and start a command.
    return [line.replace("\r", "\\r").replace("\n", "\\n") for line in out]


def _verl(job: JobSettings, setup: RunSetup, adapter: str, made_by: str) -> TrainerConfig:
    overrides: list[tuple[str, Any]] = [
        ("algorithm.adv_estimator", "grpo"),
        ("actor_rollout_ref.model.path", setup.model),
        ("data.train_files", str(setup.train)),
        ("actor_rollout_ref.rollout.n", setup.samples_per_prompt),
    ]
    mapping: list[tuple[str, str]] = [
        ("samples per prompt (-n)", f"actor_rollout_ref.rollout.n={setup.samples_per_prompt}")
    ]
    notes = (
        common_notes(job, setup)
        + free_sampling_note(job)
        + file_notes(
            job,
            setup,
            (
                512,
                "data.max_prompt_length is 512 unless set, and verl stops at a longer prompt (data.truncation=error)",
            ),
        )
    )
    if setup.val is not None:
        overrides.append(("data.val_files", str(setup.val)))
    if job.batch_size is not None:
        # One update per batch, as OpenAI's: verl's mini-batch (default 256 prompts) must not exceed it.
        overrides += [
            ("data.train_batch_size", job.batch_size),
            ("actor_rollout_ref.actor.ppo_mini_batch_size", job.batch_size),
        ]
        mapping.append(
            (
                f"batch_size {job.batch_size}",
                f"data.train_batch_size={job.batch_size}, actor_rollout_ref.actor.ppo_mini_batch_size={job.batch_size}",
            )
        )
    _carry_shared(job, "verl", overrides, mapping)
    if setup.val is not None and job.eval_interval is not None:
        overrides.append(("trainer.test_freq", job.eval_interval))
        mapping.append((f"eval_interval {job.eval_interval}", f"trainer.test_freq={job.eval_interval}"))
    if setup.val is not None and job.eval_samples is not None:
        overrides.append(("actor_rollout_ref.rollout.val_kwargs.n", job.eval_samples))
        became = f"actor_rollout_ref.rollout.val_kwargs.n={job.eval_samples}"
        if job.eval_samples > 1:  # verl's validation is greedy unless told to sample: n copies of one answer
            overrides.append(("actor_rollout_ref.rollout.val_kwargs.do_sample", True))
            became += ", val_kwargs.do_sample=true"
        mapping.append((f"eval_samples {job.eval_samples}", became))
    if job.reasoning_effort is not None:
        overrides.append(("+data.apply_chat_template_kwargs.reasoning_effort", job.reasoning_effort))
        mapping.append(
            (
                f"reasoning_effort {job.reasoning_effort}",
                f"data.apply_chat_template_kwargs.reasoning_effort={job.reasoning_effort} "
                "(read by chat templates that know it, such as gpt-oss's; others ignore it)",
            )
        )
    # The reward: rftgrade's verl adapter, and the grader in every Ray worker's environment.
    overrides += [
        ("reward.custom_reward_function.path", adapter),
        ("reward.custom_reward_function.name", "compute_score"),
        ("+ray_kwargs.ray_init.runtime_env.env_vars.RFTGRADE_GRADER", str(setup.grader)),
    ]
    mapping.append(
        ("grader", f"reward.custom_reward_function (rftgrade's verl adapter), RFTGRADE_GRADER={setup.grader}")
    )
    # verl refuses to start without micro-batch sizes; they trade memory for speed, not what is learned.
    overrides += [
        ("actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu", _VERL_MICRO_BATCH),
        ("actor_rollout_ref.rollout.log_prob_micro_batch_size_per_gpu", _VERL_MICRO_BATCH),
        ("actor_rollout_ref.ref.log_prob_micro_batch_size_per_gpu", _VERL_MICRO_BATCH),
    ]
    notes.append(
        f"micro-batches of {_VERL_MICRO_BATCH} a GPU (actor, rollout and reference log-probs), which verl "
        "requires: memory and speed, not what is learned; raise them to fill your GPUs"
    )
    notes.append(
        "hardware, lengths and logging are verl's defaults: set trainer.n_gpus_per_node, trainer.nnodes, "
        "data.max_prompt_length, data.max_response_length and trainer.logger for your run"
    )
    command = ["python3 -m verl.trainer.main_ppo \\"]
    command += [f"  {shlex.quote(f'{key}={_hydra(value)}')} \\" for key, value in overrides]
    command.append('  "$@"')
    head = [
        *_comment(mapping, notes, made_by),
        "# verl 0.9 or newer; arguments after the script's name are more overrides.",
        "# In verl 0.9's reward loop, reward.custom_reward_function.name=compute_score_async is faster.",
    ]
    return TrainerConfig("verl", _script(command, head), "bash FILE", mapping, notes)


# -- TRL ----------------------------------------------------------------------


def _yaml_value(value: Any) -> str:
    """``value`` as YAML: its JSON, which YAML reads as the same value (no YAML writer
    needed), but for a float's exponent, which YAML 1.1 (PyYAML) reads as a float only
    after a dot: ``2e-06`` would be the string "2e-06"."""
    text = json.dumps(value)
    if type(value) is float and "e" in text and "." not in text:
        mantissa, exponent = text.split("e")
        text = f"{mantissa}.0e{exponent}"
    return text


def _yaml(entries: list[tuple[str, Any]], head: list[str]) -> str:
    return "\n".join([*head, *(f"{key}: {_yaml_value(value)}" for key, value in entries)]) + "\n"


def _trl(job: JobSettings, setup: RunSetup, made_by: str) -> TrainerConfig:
    g = setup.samples_per_prompt
    entries: list[tuple[str, Any]] = [
        ("model_name_or_path", setup.model),
        ("datasets", [{"path": "json", "data_files": str(setup.train), "split": "train"}]),
        ("reward_funcs", ["rftgrade.integrations.trl.grader_reward"]),
        ("env", {"RFTGRADE_GRADER": str(setup.grader)}),
        ("num_generations", g),
    ]
    mapping: list[tuple[str, str]] = [("samples per prompt (-n)", f"num_generations: {g}")]
    notes = common_notes(job, setup) + file_notes(job, setup, None)  # TRL does not cut prompts
    if job.batch_size is not None:
        # TRL counts completions: B prompts of G samples a step are G a device x B accumulated.
        entries += [("per_device_train_batch_size", g), ("gradient_accumulation_steps", job.batch_size)]
        mapping.append(
            (
                f"batch_size {job.batch_size}",
                f"per_device_train_batch_size: {g}, gradient_accumulation_steps: {job.batch_size} "
                f"({job.batch_size} prompts x {g} completions an optimizer step, on one process; "
                "divide gradient_accumulation_steps by your number of processes)",
            )
        )
    else:
        entries.append(("per_device_train_batch_size", g))  # TRL needs a multiple of num_generations
    _carry_shared(job, "trl", entries, mapping)
    if job.reasoning_effort is not None:
        entries.append(("chat_template_kwargs", {"reasoning_effort": job.reasoning_effort}))
        mapping.append(
            (
                f"reasoning_effort {job.reasoning_effort}",
                f"chat_template_kwargs: {{reasoning_effort: {job.reasoning_effort}}} "
                "(read by chat templates that know it, such as gpt-oss's; others ignore it)",
            )
        )
    notes += trl_structured(job, entries, mapping)
    if setup.val is not None:
        notes.append(
            "eval_interval, eval_samples, --val: `trl grpo` trains on one dataset and has no separate "
            "validation file; evaluate with `rftgrade eval` on checkpoints, or pass eval_dataset to "
            "GRPOTrainer yourself (docs/trainers/trl.md)"
        )
    notes.append(
        "hardware, lengths and logging are TRL's defaults: set max_completion_length, bf16 and report_to"
    )
    head = [
        *_comment(mapping, notes, made_by),
        "# Run: trl grpo --config FILE (arguments after it override these).",
    ]
    return TrainerConfig("trl", _yaml(entries, head), "trl grpo --config FILE", mapping, notes)


# -- OpenRLHF -----------------------------------------------------------------


def _openrlhf(job: JobSettings, setup: RunSetup, made_by: str) -> TrainerConfig:
    g = setup.samples_per_prompt
    url = f"http://127.0.0.1:{setup.port}/v1/openrlhf/reward"
    flags: list[tuple[str, Any]] = [
        ("--actor.model_name_or_path", setup.model),
        ("--data.prompt_dataset", str(setup.train)),
        ("--data.input_key", "messages"),
        ("--data.label_key", "item"),
        ("--data.apply_chat_template", None),
        ("--reward.remote_url", url),
        ("--algo.advantage.estimator", "group_norm"),  # GRPO's advantage: the group's mean and std
        ("--rollout.n_samples_per_prompt", g),
    ]
    mapping: list[tuple[str, str]] = [("samples per prompt (-n)", f"--rollout.n_samples_per_prompt {g}")]
    notes = (
        common_notes(job, setup)
        + free_sampling_note(job)
        + file_notes(
            job, setup, (2048, "OpenRLHF's --data.max_len (prompt and answer together) is 2048 unless set")
        )
    )
    if job.batch_size is not None:
        flags += [("--rollout.batch_size", job.batch_size), ("--train.batch_size", job.batch_size * g)]
        mapping.append(
            (
                f"batch_size {job.batch_size}",
                f"--rollout.batch_size {job.batch_size} (prompts), --train.batch_size {job.batch_size * g} "
                "(their samples: one update a batch)",
            )
        )
    _carry_shared(job, "openrlhf", flags, mapping)
    if setup.val is not None:
        flags.append(("--eval.dataset", str(setup.val)))
        if job.eval_interval is not None:
            flags.append(("--eval.steps", job.eval_interval))
            mapping.append((f"eval_interval {job.eval_interval}", f"--eval.steps {job.eval_interval}"))
        if job.eval_samples is not None:
            flags.append(("--eval.n_samples_per_prompt", job.eval_samples))
            mapping.append(
                (f"eval_samples {job.eval_samples}", f"--eval.n_samples_per_prompt {job.eval_samples}")
            )
    if job.reasoning_effort is not None:
        notes.append(
            f"reasoning_effort {job.reasoning_effort}: OpenRLHF passes no chat-template arguments; "
            "write it into the model's chat template, or train a model without the setting"
        )
    mapping.append(("grader", f"rftgrade serve --grader {setup.grader_name}={setup.grader}, at {url}"))
    notes.append(
        "hardware is OpenRLHF's defaults: set --actor.num_gpus_per_node, --vllm.num_engines and "
        "--data.max_len for your run"
    )
    notes.append(
        "the server listens on loopback, which rollout workers on other nodes cannot reach: on a "
        "cluster, serve on an address they reach with --api-key, and use the token route "
        "(/v1/openrlhf/TOKEN/reward, docs/trainers/openrlhf.md)"
    )
    serve = (
        f"rftgrade serve --grader {shlex.quote(f'{setup.grader_name}={setup.grader}')} "
        f"--host 127.0.0.1 --port {setup.port} &"
    )
    lines = [
        "# The reward server, on loopback, stopped when this script ends.",
        serve,
        "server=$!",
        "trap 'kill \"$server\"' EXIT",
        f"until curl -sf http://127.0.0.1:{setup.port}/healthz >/dev/null; do",
        '  kill -0 "$server" || { echo "rftgrade serve did not start" >&2; exit 1; }',
        "  sleep 1",
        "done",
        "python3 -m openrlhf.cli.train_ppo_ray \\",
    ]
    for flag, value in flags:
        lines.append(f"  {flag} \\" if value is None else f"  {flag} {shlex.quote(str(value))} \\")
    lines.append('  "$@"')
    head = [
        *_comment(mapping, notes, made_by),
        "# OpenRLHF 0.11 or newer (dotted flags); arguments after the script's name are more flags.",
    ]
    return TrainerConfig("openrlhf", _script(lines, head), "bash FILE", mapping, notes)


def trainer_config(
    source: GraderSource, setup: RunSetup, trainer: str, *, verl_adapter: str, made_by: str
) -> TrainerConfig:
    """The launch file for ``trainer`` (``verl``, ``trl`` or ``openrlhf``).

    Args:
        source: the job as :func:`rftgrade._forms.read_grader_source` read it.
        verl_adapter: the path of ``rftgrade/integrations/verl.py`` in the trainer's environment.
        made_by: the command line, written at the top of the file.

    Raises:
        DataError: a hyperparameter OpenAI would refuse (see :func:`job_settings`),
            or an unknown trainer.
    """
    job = job_settings(source)
    if trainer == "verl":
        return _verl(job, setup, verl_adapter, made_by)
    if trainer == "trl":
        return _trl(job, setup, made_by)
    if trainer == "openrlhf":
        return _openrlhf(job, setup, made_by)
    raise DataError(f"trainer {trainer!r} is not one of: verl, trl, openrlhf")
