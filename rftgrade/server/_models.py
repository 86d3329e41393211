"""Request bodies of the reward server (they also document the OpenAPI schema)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["GradeRequest", "OpenRLHFRequest", "RegisterRequest", "RunRequest", "ValidateRequest"]


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


class GradeRequest(_Body):
    """``POST /v1/grade``: many rows with one grader (JSON, a registered id, or a name)."""

    grader: dict[str, Any] | str | None = Field(
        default=None, description="grader JSON, id or name; default: the server's"
    )
    rows: list[Any]
    stream: bool = False
    compact: bool = Field(
        default=False,
        description='answer {"rewards": [...], "failures": [{"index", "flags", "messages"}]} '
        "instead of a full result per row",
    )


class OpenRLHFRequest(_Body):
    """OpenRLHF's remote reward request."""

    query: list[str]
    prompts: list[str] | None = None
    labels: list[Any] | None = None
