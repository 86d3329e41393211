"""Choosing executors from CLI options (sandbox backend, judge configuration)."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from rftgrade._graders import Runtime
from rftgrade._runtime import build_runtime, needs_judge, needs_python
from rftgrade._specs import AnyGrader

if TYPE_CHECKING:
    from rftgrade._grader import Grader

__all__ = ["RayOption", "SandboxOption", "make_runtime", "needs_judge", "needs_python", "open_grader"]

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


def open_grader(
    path: Path,
    sandbox: str | None,
    ray: str | None = None,
    *,
    judge_cache: bool = True,
    announce: bool = True,
) -> Grader:
    """The grader of a CLI command, with its runtime; problems printed, then ``typer.Exit``.

    Exit 1: the grader is invalid. Exit 2: it cannot run here (no sandbox, no extra).
    """
    from rich.console import Console
    from rich.markup import escape

    from rftgrade._exceptions import GraderValidationError, RftgradeError
    from rftgrade._grader import Grader
    from rftgrade._load import load_spec
    from rftgrade.cli._io import say_form

    err = Console(stderr=True)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            if announce:
                say_form(path)
            spec = load_spec(path)
            loaded = Grader(spec, runtime=make_runtime(spec, sandbox, ray, judge_cache=judge_cache))
        for w in caught:
            err.print(f"[yellow]warning:[/] {w.message}", highlight=False)
        return loaded
    except GraderValidationError as exc:
        err.print(f"[bold red]{path}: invalid[/] ({len(exc.problems)} problem(s))")
        for p in exc.problems:
            err.print(f"  [red]✗[/] [bold]{p.path or '<root>'}[/]: {p.message}", highlight=False)
        raise typer.Exit(1) from None
    except (RftgradeError, ValueError) as exc:
        # Escaped: a message may name an extra, e.g. 'rftgrade[ray]', which rich reads as markup.
        err.print(f"[red]error:[/] {escape(str(exc))}", highlight=False)
        raise typer.Exit(2) from None


def make_runtime(
    spec: AnyGrader, sandbox: str | None, ray: str | None = None, *, judge_cache: bool = True
) -> Runtime:
    """The runtime of a CLI run (:func:`rftgrade.build_runtime`); only what the grader needs is started.

    Raises:
        BackendUnavailableError: the sandbox asked for (or any isolating one, for
            ``auto``) cannot run here.
    """
    runtime = build_runtime(spec, sandbox=sandbox or "auto", ray=ray, judge_cache=judge_cache)
    python = runtime.python
    if python is not None and not python.isolated:
        typer.echo(
            f"warning: the {python.name} sandbox is NOT isolated: python graders run with "
            "your files, network and environment",
            err=True,
        )
    return runtime
