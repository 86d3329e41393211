"""Pydantic models of OpenAI's grader JSON, discriminated on ``type``.

These models read and write exactly the wire format of OpenAI's grader objects
(see ``docs/graders.md``). They only describe a grader; compiling and running one
happens in :mod:`rftgrade._compile`.
"""

from __future__ import annotations

import warnings
from typing import Annotated, Any, Literal, Union, get_args

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = [
    "GRADER_TYPES",
    "STRING_CHECK_OPERATIONS",
    "TEXT_SIMILARITY_METRICS",
    "AnyGrader",
    "GraderSpec",
    "InputAudio",
    "InputImage",
    "InputMessage",
    "InputText",
    "LabelModelGrader",
    "MultiGrader",
    "OutputText",
    "PythonGrader",
    "SamplingParams",
    "ScoreModelGrader",
    "StringCheckGrader",
    "SubGrader",
    "TextSimilarityGrader",
    "grader_parts",
]

GRADER_TYPES = ("string_check", "text_similarity", "python", "score_model", "label_model", "multi")
StringCheckOperation = Literal["eq", "ne", "like", "ilike"]
TextSimilarityMetric = Literal[
    "cosine",
    "fuzzy_match",
    "bleu",
    "gleu",
    "meteor",
    "rouge_1",
    "rouge_2",
    "rouge_3",
    "rouge_4",
    "rouge_5",
    "rouge_l",
]
# The same values as tuples, for messages and checks: one list, read off the types.
STRING_CHECK_OPERATIONS: tuple[str, ...] = get_args(StringCheckOperation)
TEXT_SIMILARITY_METRICS: tuple[str, ...] = get_args(TextSimilarityMetric)


class _Wire(BaseModel):
    """Base for every wire object: unknown keys are parsed, then rejected by ``load_spec``.

    OpenAI's API rejects unknown keys, and a typo (``"rnage"``) silently changes rewards;
    ``load_spec`` turns every key left in ``model_extra`` into an error with its JSON path
    and a "did you mean". They are parsed first (not ``extra="forbid"``) so that check
    knows each object's own fields to suggest from.
    """

    # defer_build: a model's validator is built when it is first used, so a process
    # that reads one python grader does not build the other five (~50 ms at start-up).
    model_config = ConfigDict(extra="allow", populate_by_name=True, defer_build=True)


class _GraderBase(_Wire):
    name: str = ""
    """Human-readable name, reported back in ``metadata.name``."""
    pass_threshold: float | None = None
    """Evals-only pass mark; tolerated on every grader, never changes the reward."""


class StringCheckGrader(_GraderBase):
    """``string_check``: compares a rendered ``input`` with a rendered ``reference``."""

    type: Literal["string_check"] = "string_check"
    input: str
    reference: str
    operation: StringCheckOperation


class TextSimilarityGrader(_GraderBase):
    """``text_similarity``: a similarity metric between ``input`` and ``reference``."""

    type: Literal["text_similarity"] = "text_similarity"
    input: str
    reference: str
    evaluation_metric: TextSimilarityMetric


class PythonGrader(_GraderBase):
    """``python``: user code defining ``grade(sample, item) -> float``."""

    type: Literal["python"] = "python"
    source: str
    image_tag: str | None = None
    isolation: Literal["worker", "sample"] | None = None
    """rftgrade's own key (not OpenAI's): run each sample in a fresh fork (``sample``) or share
    a warm worker (``worker``); see docs/sandbox.md."""


class InputText(_Wire):
    type: Literal["input_text"] = "input_text"
    text: str


class OutputText(_Wire):
    type: Literal["output_text"] = "output_text"
    text: str


class InputImage(_Wire):
    type: Literal["input_image"] = "input_image"
    image_url: str
    detail: Literal["high", "low", "auto"] | None = None
    file_id: str | None = None
    """An uploaded file's id, as OpenAI's SDK sends it beside ``image_url``; kept, not fetched."""


class _AudioData(_Wire):
    data: str
    format: Literal["mp3", "wav"]


class InputAudio(_Wire):
    type: Literal["input_audio"] = "input_audio"
    input_audio: _AudioData


ContentPart = Annotated[Union[InputText, OutputText, InputImage, InputAudio], Field(discriminator="type")]


class InputMessage(_Wire):
    """One chat message of a model grader's prompt; every text in it is a template."""

    role: Literal["user", "assistant", "system", "developer"]
    content: Union[str, ContentPart, list[ContentPart]]
    type: Literal["message"] | None = None


class SamplingParams(_Wire):
    """Sampling parameters a model grader sends to its judge model."""

    max_completions_tokens: int | None = Field(default=None, ge=1)
    reasoning_effort: Literal["none", "minimal", "low", "medium", "high", "xhigh", "max"] | None = None
    seed: int | None = None
    temperature: float | None = None
    top_p: float | None = None


class ScoreModelGrader(_GraderBase):
    """``score_model``: a judge model returns a number in ``range``."""

    type: Literal["score_model"] = "score_model"
    model: str
    input: list[InputMessage]
    range: list[float] | None = None
    sampling_params: SamplingParams | None = None

    @field_validator("range")
    @classmethod
    def _check_range(cls, value: list[float] | None) -> list[float] | None:
        if value is None:
            return value
        if len(value) != 2:
            raise ValueError("range must be two numbers [min, max], e.g. [0, 1]")
        if not value[0] < value[1]:
            raise ValueError(f"range must have min < max; got {value}")
        return value


class LabelModelGrader(_GraderBase):
    """``label_model``: a judge model picks one of ``labels``; passing labels score 1."""

    type: Literal["label_model"] = "label_model"
    model: str
    input: list[InputMessage]
    labels: list[str] = Field(min_length=1)
    passing_labels: list[str]
    sampling_params: SamplingParams | None = None

    @model_validator(mode="after")
    def _passing_subset(self) -> LabelModelGrader:
        unknown = [p for p in self.passing_labels if p not in self.labels]
        if unknown:
            raise ValueError(
                f"passing_labels {unknown} are not in labels {self.labels}; "
                "every passing label must be one of the labels"
            )
        return self


SubGrader = Annotated[
    Union[StringCheckGrader, TextSimilarityGrader, PythonGrader, ScoreModelGrader, LabelModelGrader],
    Field(discriminator="type"),
]


class MultiGrader(_GraderBase):
    """``multi``: named sub-graders combined by the ``calculate_output`` formula."""

    type: Literal["multi"] = "multi"
    graders: dict[str, SubGrader]
    calculate_output: str

    @model_validator(mode="before")
    @classmethod
    def _normalise_graders(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        graders = data.get("graders")
        if isinstance(graders, dict) and isinstance(graders.get("type"), str):
            # The openai SDK's current types emit one grader instead of a named map
            # (openai/openai-java#647); accept it under its name so formulas can use it.
            key = str(graders.get("name") or "grader")
            warnings.warn(
                "multi.graders holds a single grader; OpenAI's API expects a map of "
                f"key -> grader. Read it as {{{key!r}: ...}}; write "
                f'"graders": {{"{key}": {{...}}}} to silence this warning.',
                DeprecationWarning,
                stacklevel=2,
            )
            data = {**data, "graders": {key: graders}}
        elif isinstance(graders, list):
            raise ValueError(
                "graders must be an object mapping a key to a grader (the keys are the "
                'formula\'s variables), e.g. {"name": {...}, "email": {...}}, not a list'
            )
        if isinstance(data.get("graders"), dict):
            for key, sub in data["graders"].items():
                if isinstance(sub, dict) and sub.get("type") == "multi":
                    raise ValueError(
                        f"graders.{key} is a multi grader; multi graders cannot be nested. "
                        "Flatten it: move its sub-graders up and combine them in one formula"
                    )
        return data

    @field_validator("graders")
    @classmethod
    def _non_empty(cls, value: dict[str, Any]) -> dict[str, Any]:
        if not value:
            raise ValueError("graders must name at least one sub-grader")
        return value


AnyGrader = Union[
    StringCheckGrader,
    TextSimilarityGrader,
    PythonGrader,
    ScoreModelGrader,
    LabelModelGrader,
    MultiGrader,
]
GraderSpec = Annotated[AnyGrader, Field(discriminator="type")]


def grader_parts(spec: AnyGrader) -> list[AnyGrader]:
    """The graders that do the work: a ``multi``'s sub-graders, else the grader itself."""
    return list(spec.graders.values()) if isinstance(spec, MultiGrader) else [spec]
