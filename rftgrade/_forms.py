"""The forms a grader arrives in, and finding the grader inside each.

A team leaving OpenAI holds its grader in whatever it last sent: a bare grader
object, the body of ``client.fine_tuning.jobs.create`` (or the job object it
returned), that body's ``method`` or ``reinforcement`` block, an Evals
``testing_criteria`` entry (or an eval with exactly one), or a ``graders/run``
request body. :func:`read_grader_source` accepts each of them and says which it
read; the job's other fields (model, hyperparameters, file names) are kept for
``rftgrade eval`` and shown by the CLI.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from rftgrade._exceptions import GraderValidationError, Problem
from rftgrade._specs import GRADER_TYPES

__all__ = ["FORMS", "GraderSource", "read_grader_source", "read_json_source"]

FORMS = ("grader", "fine_tuning_job", "method", "reinforcement", "testing_criteria", "graders_run")
"""Every form :func:`read_grader_source` reads, as reported in :attr:`GraderSource.form`."""

# The fields of a fine-tuning job worth showing a migrating team: what was trained, on what.
_JOB_FIELDS = ("model", "training_file", "validation_file", "suffix", "seed", "id", "status")

_EXPECTED = (
    "a grader object (with `type`), a fine-tuning job body "
    '({"model", "training_file", "method": {"type": "reinforcement", "reinforcement": {"grader": ...}}}), '
    "its `method` or `reinforcement` block, an Evals `testing_criteria` entry, or a graders/run body "
    '({"grader": ..., "item": ..., "model_sample": ...})'
)


@dataclass(frozen=True)
class GraderSource:
    """A grader's JSON and the form it was found in."""

    data: dict[str, Any]
    """The grader object itself."""
    form: str
    """One of :data:`FORMS`."""
    job: dict[str, Any] | None = None
    """For a job (or its blocks): ``model``, ``hyperparameters``, ``training_file``,
    ``validation_file``, ``suffix``, ``response_format`` where present."""
    path: str = field(default="")
    """Where in the input the grader was found (``method.reinforcement.grader``)."""

    def describe(self) -> str:
        """One line for a person: which form was read and what the job said."""
        names = {
            "grader": "a grader",
            "fine_tuning_job": "a fine-tuning job",
            "method": "a fine-tuning job's method block",
            "reinforcement": "a fine-tuning job's reinforcement block",
            "testing_criteria": "an Evals testing_criteria entry",
            "graders_run": "a graders/run request body",
        }
        text = names[self.form]
        if self.path:
            text += f" (grader at `{self.path}`)"
        if self.job:
            shown = [
                f"{k} {self.job[k]}" for k in ("model", "training_file", "validation_file") if k in self.job
            ]
            hyper = self.job.get("hyperparameters")
            if isinstance(hyper, dict) and hyper:
                shown.append("hyperparameters " + json.dumps(hyper, sort_keys=True))
            if shown:
                text += ": " + ", ".join(shown)
        return text


def read_json_source(source: Any) -> Any:
    """A path, JSON text or already-parsed value, as parsed JSON.

    Raises:
        GraderValidationError: the file is missing or its text is not JSON.
    """
    if isinstance(source, BaseModel):
        return source.model_dump(mode="json", exclude_none=True, by_alias=True)
    if isinstance(source, (dict, list)):
        return source
    text = source
    if isinstance(source, Path) or (isinstance(source, str) and not source.lstrip().startswith(("{", "["))):
        path = Path(source)
        if not path.is_file():
            raise GraderValidationError(
                [Problem("", f"no grader file at {path}; pass a path to a .json file or the JSON itself")]
            )
        text = path.read_text(encoding="utf-8")
    try:
        return json.loads(str(text))
    except json.JSONDecodeError as exc:
        raise GraderValidationError(
            [Problem("", f"not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}")]
        ) from None


def read_grader_source(source: Any) -> GraderSource:
    """Find the grader in any accepted form (see :data:`FORMS`).

    Raises:
        GraderValidationError: the input is none of the forms; the problem says at
            ``<root>`` what was expected.
    """
    data = read_json_source(source)
    if not isinstance(data, dict):
        raise GraderValidationError([Problem("", f"expected {_EXPECTED}; got a JSON {type(data).__name__}")])
    if "type" in data and data.get("type") != "reinforcement":
        form = (
            "testing_criteria" if "pass_threshold" in data and data.get("type") in GRADER_TYPES else "grader"
        )
        return GraderSource(data, form)
    if isinstance(data.get("method"), dict):
        return _from_method(data["method"], "fine_tuning_job", "method", _job_fields(data))
    if data.get("type") == "reinforcement":
        return _from_method(data, "method", "", {})
    if "testing_criteria" in data:
        return _from_eval(data)
    if isinstance(data.get("grader"), dict):
        form = "graders_run" if {"item", "model_sample"} & set(data) else "reinforcement"
        job = _reinforcement_fields(data) if form == "reinforcement" else None
        return GraderSource(data["grader"], form, job or None, "grader")
    keys = ", ".join(f"`{k}`" for k in list(data)[:8]) or "no keys"
    raise GraderValidationError([Problem("", f"expected {_EXPECTED}; got an object with {keys}")])


def _job_fields(data: dict[str, Any]) -> dict[str, Any]:
    return {k: data[k] for k in _JOB_FIELDS if data.get(k) is not None}


def _reinforcement_fields(block: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in ("hyperparameters", "response_format"):
        if block.get(key) is not None:
            out[key] = block[key]
    return out


def _from_method(method: dict[str, Any], form: str, prefix: str, job: dict[str, Any]) -> GraderSource:
    where = f"{prefix}." if prefix else ""
    kind = method.get("type")
    if kind != "reinforcement":
        raise GraderValidationError(
            [
                Problem(
                    f"{where}type",
                    f"this job's method is {kind!r}, not 'reinforcement': only reinforcement "
                    "fine-tuning jobs carry a grader",
                )
            ]
        )
    block = method.get("reinforcement")
    if not isinstance(block, dict) or not isinstance(block.get("grader"), dict):
        raise GraderValidationError(
            [Problem(f"{where}reinforcement.grader", "missing: a reinforcement method holds its grader here")]
        )
    job = {**job, **_reinforcement_fields(block)}
    return GraderSource(block["grader"], form, job, f"{where}reinforcement.grader")


def _from_eval(data: dict[str, Any]) -> GraderSource:
    criteria = data["testing_criteria"]
    if not isinstance(criteria, list) or not criteria:
        raise GraderValidationError([Problem("testing_criteria", "expected a non-empty list of graders")])
    if len(criteria) > 1:
        names = ", ".join(
            f"[{i}] {c.get('name', '?')!r}" for i, c in enumerate(criteria) if isinstance(c, dict)
        )
        raise GraderValidationError(
            [
                Problem(
                    "testing_criteria",
                    f"this eval has {len(criteria)} testing criteria ({names}); save the one to use as its "
                    "own file, or combine them in a `multi` grader",
                )
            ]
        )
    if not isinstance(criteria[0], dict):
        raise GraderValidationError([Problem("testing_criteria[0]", "expected a grader object")])
    return GraderSource(criteria[0], "testing_criteria", None, "testing_criteria[0]")
