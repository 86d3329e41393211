"""The notes of ``rftgrade export config``: what a job's settings could not carry into
the trainer's file and why, and what its training file shows (a batch it cannot fill,
prompts near the trainer's default length). :mod:`trainer_config` writes the files;
this says what to check in them, so nothing is dropped silently."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rftgrade._jsonl import iter_json_lines
from rftgrade.integrations.job_settings import JobSettings
from rftgrade.integrations.structured_output import StructuredOutputUnavailable, schema_regex

if TYPE_CHECKING:
    from rftgrade.integrations.trainer_config import RunSetup


_FREE = (
    "response_format: OpenAI constrained the sampled model's output to the job's JSON schema; {why}, "
    "so the prompt must ask for that JSON (the grader reads sample.output_json from the output text)"
)


def free_sampling_note(job: JobSettings) -> list[str]:
    """verl's and OpenRLHF's note: they have no setting for a constrained sampler."""
    if job.response_format is None:
        return []
    return [_FREE.format(why="this trainer samples freely (TRL's launch file can constrain vLLM to it)")]


def trl_structured(
    job: JobSettings, entries: list[tuple[str, Any]], mapping: list[tuple[str, str]]
) -> list[str]:
    """The job's schema as TRL's ``vllm_structured_outputs_regex``, or the note why not."""
    if job.response_format is None:
        return []
    try:
        regex = schema_regex(job.response_format)
    except StructuredOutputUnavailable as exc:
        return [f"{_FREE.format(why='TRL samples freely here')}; {exc}"]
    entries.append(("vllm_structured_outputs_regex", regex))
    mapping.append(
        (
            "response_format",
            f"vllm_structured_outputs_regex: the JSON schema as a regex ({len(regex):,} characters, "
            "outlines-core): vLLM samples under it, as OpenAI sampled under the schema",
        )
    )
    return [
        "response_format: vllm_structured_outputs_regex holds only with use_vllm: true (TRL's transformers "
        "generation ignores it); it applies from the first token, so a model that reasons in <think> first "
        "cannot: remove the line for such a model and ask for the JSON in the prompt"
    ]


def common_notes(job: JobSettings, setup: RunSetup) -> list[str]:
    if not job.from_job:
        return [
            "the file is a grader, not a job: no hyperparameters to carry, so the trainer's defaults "
            "stand (pass the job's JSON to carry its batch size, epochs, learning rate and evaluation)"
        ]
    notes = []
    if job.model:
        notes.append(
            f"model: the job trained {job.model}, which has no open weights; this run trains {setup.model}"
        )
    if job.compute_multiplier is not None:
        notes.append(
            f"compute_multiplier {job.compute_multiplier:g}: OpenAI does not publish what it multiplies; "
            f"the nearest open setting is the samples per prompt ({setup.samples_per_prompt}, -n)"
        )
    for name, value in (("batch_size", job.batch_size), ("n_epochs", job.n_epochs)):
        if value is None:
            notes.append(
                f"{name} auto: OpenAI chose it from the dataset; the trainer's default stands (set it)"
            )
    if setup.val is None and (job.eval_interval or job.eval_samples):
        notes.append("eval_interval, eval_samples: no --val file, so no evaluation is set up")
    return notes


@dataclass(frozen=True)
class _TrainFile:
    """What the training file says about the run: its rows, and its longest prompt."""

    rows: int
    longest_prompt_tokens: int
    """Estimated at 4 characters a token (as ``validate`` does), before the chat template."""


def _train_file(path: Path) -> _TrainFile | None:
    """``None`` for a file this cannot read line by line (parquet)."""
    if path.suffix not in (".jsonl", ".json"):
        return None
    rows = longest = 0
    for _, row, _ in iter_json_lines(path):
        rows += 1
        turns = row.get("prompt", row.get("messages")) if isinstance(row, dict) else None
        if isinstance(turns, list):
            chars = sum(
                len(t["content"]) for t in turns if isinstance(t, dict) and isinstance(t.get("content"), str)
            )
            longest = max(longest, chars // 4 + 1)
    return _TrainFile(rows, longest)


def file_notes(job: JobSettings, setup: RunSetup, length: tuple[int, str] | None) -> list[str]:
    """What the training file shows: a batch it cannot fill, and prompts near the trainer's
    default length (``length``: that default, and what to say); near is half of it, as
    4 characters a token can undercount by half (code, most languages but English)."""
    seen = _train_file(setup.train)
    if seen is None:
        return []
    notes = []
    if job.batch_size is not None and seen.rows < job.batch_size:
        notes.append(
            f"batch_size {job.batch_size} is more prompts than {setup.train} holds ({seen.rows}): the trainers "
            "drop an incomplete batch, so no step would run; lower it or add rows"
        )
    if length is not None and seen.longest_prompt_tokens > length[0] // 2:
        notes.append(
            f"the longest prompt of {setup.train} is about {seen.longest_prompt_tokens:,} tokens (4 characters "
            f"a token, before the chat template): {length[1]}"
        )
    return notes
