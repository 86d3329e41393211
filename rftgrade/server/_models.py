"""Request bodies of the reward server (they also document the OpenAPI schema)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from rftgrade.integrations.openrlhf import OpenRLHFRequest

__all__ = [
    "GradeGroup",
    "GradeRequest",
    "OpenRLHFRequest",
    "RegisterRequest",
    "RunRequest",
    "ValidateRequest",
]


class _Body(BaseModel):
    model_config = ConfigDict(extra="allow")


class RunRequest(_Body):
    """OpenAI's ``POST /v1/fine_tuning/alpha/graders/run`` body."""

    grader: dict[str, Any]
    model_sample: str
    item: dict[str, Any] | None = None


class ValidateRequest(_Body):
    """OpenAI's ``POST /v1/fine_tuning/alpha/graders/validate`` body."""

    grader: dict[str, Any]


class RegisterRequest(_Body):
    """``POST /v1/graders``: a grader to compile once; later calls name its id."""

    grader: dict[str, Any]
    name: str | None = None


class GradeGroup(_Body):
    """Samples graded against one item: a GRPO group (one prompt, its N completions)."""

    # Any, as in `rows`: an item that is not an object flags its rows, not the request.
    item: Any = None
    samples: list[Any]


class GradeRequest(_Body):
    """``POST /v1/grade``: many rows with one grader (JSON, a registered id, or a name).

    The rows come as ``rows`` (``[{"sample", "item"}, ...]``) or as ``groups``
    (``[{"item", "samples": [...]}, ...]``: each item sent once for all its
    samples); either way the answer has one entry per sample, in order.
    """

    grader: dict[str, Any] | str | None = Field(
        default=None, description="grader JSON, id or name; default: the server's"
    )
    rows: list[Any] | None = Field(default=None, description='[{"sample", "item"}, ...]')
    groups: list[GradeGroup] | None = Field(
        default=None,
        description='instead of rows: [{"item": {...}, "samples": [...]}, ...], one item for all its '
        "samples (a GRPO group); answered in the order of the samples, group after group",
    )
    stream: bool = False
    compact: bool = Field(
        default=False,
        description='answer {"rewards": [...], "failures": [{"index", "flags", "messages"}]} '
        "instead of a full result per row",
    )

    @model_validator(mode="after")
    def _rows_or_groups(self) -> GradeRequest:
        if (self.rows is None) == (self.groups is None):
            raise ValueError(
                'give the batch as `rows` ([{"sample", "item"}, ...]) or as `groups` '
                '([{"item", "samples": [...]}, ...]), not ' + ("both" if self.rows is not None else "neither")
            )
        return self

    def all_rows(self) -> list[Any]:
        """The rows, ``groups`` spelled out as one row per sample."""
        if self.groups is None:
            return self.rows or []
        return [{"sample": sample, "item": group.item} for group in self.groups for sample in group.samples]
