"""An OpenAI RFT job's hyperparameters, checked against what OpenAI accepts.

``method.reinforcement.hyperparameters`` holds ``batch_size``, ``n_epochs``,
``learning_rate_multiplier``, ``eval_interval``, ``eval_samples``,
``reasoning_effort`` and ``compute_multiplier``, each ``"auto"`` or a value in
OpenAI's range; :func:`job_settings` reads them (and the job's ``seed``) for
:mod:`rftgrade.integrations.trainer_config`, naming the field of any value OpenAI
would refuse.
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass
from typing import Any

from rftgrade._exceptions import DataError
from rftgrade._forms import GraderSource

__all__ = ["BASE_LEARNING_RATE", "HYPERPARAMETERS", "JobSettings", "job_settings"]

BASE_LEARNING_RATE = 1e-6
"""The actor's learning rate when verl, TRL and OpenRLHF are left at their defaults
(``actor_rollout_ref.actor.optim.lr``, ``GRPOConfig.learning_rate``,
``--actor.adam.lr``); ``learning_rate_multiplier`` scales it."""

HYPERPARAMETERS: dict[str, str] = {
    # name: what OpenAI accepts (SPEC FineTuneReinforcementHyperparameters)
    "batch_size": '"auto" or an integer from 1 to 256',
    "learning_rate_multiplier": '"auto" or a number above 0',
    "n_epochs": '"auto" or an integer from 1 to 50',
    "reasoning_effort": '"default", "low", "medium" or "high"',
    "compute_multiplier": '"auto" or a number above 0.00001, at most 10',
    "eval_interval": '"auto" or an integer of 1 or more',
    "eval_samples": '"auto" or an integer of 1 or more',
}
_EFFORTS = ("default", "low", "medium", "high")


@dataclass(frozen=True)
class JobSettings:
    """A job's hyperparameters, checked; ``None`` where the job said ``"auto"`` or nothing."""

    batch_size: int | None = None
    learning_rate_multiplier: float | None = None
    n_epochs: int | None = None
    reasoning_effort: str | None = None
    compute_multiplier: float | None = None
    eval_interval: int | None = None
    eval_samples: int | None = None
    seed: int | None = None
    model: str | None = None
    """OpenAI's model (``o4-mini-2025-04-16``): named in a note, never trained here."""
    response_format: dict[str, Any] | None = None
    """The job's ``response_format``: OpenAI sampled under its JSON schema."""
    from_job: bool = True
    """False for a bare grader: no job, so no settings to carry."""


def _where(source: GraderSource) -> str:
    """The path of the job's hyperparameters, as the user's file spells it."""
    return source.path.rsplit("grader", 1)[0] + "hyperparameters" if source.path else "hyperparameters"


def _integer(value: Any, low: int, high: int | None) -> int | None:
    if type(value) is int and value >= low and (high is None or value <= high):
        return value
    return None


def _number(value: Any, above: float, at_most: float | None) -> float | None:
    if type(value) in (int, float) and value > above and (at_most is None or value <= at_most):
        return float(value)
    return None


def job_settings(source: GraderSource) -> JobSettings:
    """The job's hyperparameters and seed, each checked against what OpenAI accepts.

    Raises:
        DataError: a value OpenAI would refuse, or an unknown key; each problem names
            its field (``method.reinforcement.hyperparameters.batch_size``) and what it takes.
    """
    if source.job is None:
        return JobSettings(from_job=False)
    job = source.job
    where = _where(source)
    hyper = job.get("hyperparameters") or {}
    problems: list[str] = []
    if not isinstance(hyper, dict):
        raise DataError(f"{where}: expected an object of hyperparameters, got {type(hyper).__name__}")
    values: dict[str, Any] = {}
    for key, value in hyper.items():
        if key not in HYPERPARAMETERS:
            close = difflib.get_close_matches(key, HYPERPARAMETERS, n=1, cutoff=0.6)
            hint = f"; did you mean `{close[0]}`?" if close else f" (known: {', '.join(HYPERPARAMETERS)})"
            problems.append(f"{where}.{key}: not a reinforcement hyperparameter{hint}")
            continue
        if value is None or (value == "auto" and key != "reasoning_effort"):
            continue  # a job object from the API gives null for what was never set
        checked: Any
        if key == "batch_size":
            checked = _integer(value, 1, 256)
        elif key == "n_epochs":
            checked = _integer(value, 1, 50)
        elif key in ("eval_interval", "eval_samples"):
            checked = _integer(value, 1, None)
        elif key == "learning_rate_multiplier":
            checked = _number(value, 0.0, None)
        elif key == "compute_multiplier":
            checked = _number(value, 0.00001, 10.0)
        else:
            checked = value if value in _EFFORTS else None
        if checked is None:
            problems.append(f"{where}.{key}: {json.dumps(value)} is not {HYPERPARAMETERS[key]}")
        else:
            values[key] = checked
    seed = job.get("seed")
    if seed is not None and type(seed) is not int:
        problems.append(f"seed: {json.dumps(seed)} is not an integer")
    if problems:
        raise DataError("\n".join(problems))
    if values.get("reasoning_effort") == "default":
        values.pop("reasoning_effort")
    return JobSettings(
        **values,
        seed=seed,
        model=job.get("model") if isinstance(job.get("model"), str) else None,
        response_format=job["response_format"] if isinstance(job.get("response_format"), dict) else None,
    )
