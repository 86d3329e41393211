"""Choosing executors from CLI options (sandbox backend, judge configuration)."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from rftgrade._executors import JudgeExecutor, PythonExecutor
from rftgrade._specs import AnyGrader, LabelModelGrader, PythonGrader, ScoreModelGrader, grader_parts

__all__ = ["RayOption", "SandboxOption", "make_executors", "needs_judge", "needs_python"]

SandboxOption = Annotated[
    Optional[str],
    typer.Option(
        "--sandbox",
        help="Where python graders run: docker, bwrap or process (NOT isolated). "
        "Default: $RFTGRADE_SANDBOX, else docker if an engine and image exist, else bwrap.",
    ),
]


RayOption = Annotated[
    Optional[str],
    typer.Option(
        "--ray",
        help="Run python graders on a Ray cluster: auto (this machine's cluster or $RAY_ADDRESS) "
        "or the head's HOST:PORT. Needs pip install 'rftgrade[ray]'.",
    ),
]


def needs_python(spec: AnyGrader) -> bool:
    return any(isinstance(g, PythonGrader) for g in grader_parts(spec))


def needs_judge(spec: AnyGrader) -> bool:
    return any(isinstance(g, (ScoreModelGrader, LabelModelGrader)) for g in grader_parts(spec))


def make_executors(
    spec: AnyGrader, sandbox: str | None, ray: str | None = None
) -> tuple[PythonExecutor | None, JudgeExecutor | None]:
    """Executors for a CLI run; only what the grader needs is started.

    Raises:
        BackendUnavailableError: the sandbox asked for (or any isolating one, for
            ``auto``) cannot run here.
    """
    python: PythonExecutor | None = None
    judge: JudgeExecutor | None = None
    if needs_python(spec):
        from rftgrade.sandbox import SandboxExecutor

        python = SandboxExecutor(sandbox or "auto", ray=ray)
        if not python.isolated:
            typer.echo(
                f"warning: the {python.name} sandbox is NOT isolated: python graders run with "
                "your files, network and environment",
                err=True,
            )
    if needs_judge(spec):
        from rftgrade.judge import BatchScorer

        judge = BatchScorer()
    return python, judge
