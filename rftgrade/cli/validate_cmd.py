"""``rftgrade validate``: the grader (any form it arrives in), the judge routing, and the dataset."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.console import Console

from rftgrade._datacheck import Finding, check_dataset
from rftgrade._exceptions import DataError, GraderValidationError
from rftgrade._forms import GraderSource, read_grader_source
from rftgrade._grader import validate
from rftgrade.cli._runtime import needs_judge
from rftgrade.integrations.job_settings import job_settings

__all__ = ["validate_cmd"]

out = Console()
err = Console(stderr=True)


def validate_cmd(
    grader: Annotated[Path, typer.Argument(help="Grader JSON, fine-tuning job JSON, or Evals criterion.")],
    data: Annotated[
        Optional[list[Path]],
        typer.Option(
            "--data", help="JSONL dataset to check against the grader (repeat for train and valid)."
        ),
    ] = None,
    require_judge: Annotated[
        bool,
        typer.Option(
            "--require-judge", help="A model grader with no judge routed is an error, not a warning."
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print every finding as a JSON list.")] = False,
) -> None:
    """Check a grader (and, with --data, a dataset against it) without grading. Exit 1 on any problem."""
    findings: list[Finding] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        report = validate(grader)
        if report.ok and report.spec is not None and needs_judge(report.spec):
            from rftgrade.judge import BatchScorer

            try:
                routed = validate(grader, judge=BatchScorer())
            except ValueError as exc:  # a broken routing file is always an error
                routed = None
                findings.append(Finding("error", f"judge routing: {exc}"))
            if routed is not None:
                for problem in routed.problems:
                    # Like OpenAI's validate, a model grader is valid with no model at hand; runs
                    # fail until one is routed, so say so (an error under --require-judge).
                    level = "error" if require_judge or problem.kind != "model" else "warning"
                    message = problem.message
                    if level == "warning":
                        message += "; runs of this grader fail until a judge is routed (--require-judge makes this an error)"
                    findings.append(Finding(level, message, path=problem.path))
    findings[:0] = [Finding("warning", str(w.message)) for w in caught]
    findings[:0] = [Finding("warning", text) for text in report.warnings]
    findings[:0] = [Finding("error", p.message, path=p.path) for p in report.problems]
    form = ""
    try:
        source = read_grader_source(grader)
        form = source.describe() if source.form != "grader" else ""
        findings += _job_findings(source)
    except GraderValidationError:
        pass
    if report.spec is not None and data:
        missing = [p for p in data if not p.is_file()]
        for p in missing:
            findings.append(Finding("error", f"no data file at {p}", str(p)))
        findings += check_dataset(report.spec, [p for p in data if p.is_file()])
    failed = any(f.level == "error" for f in findings)
    if as_json:
        out.print_json(json.dumps([f.to_dict() for f in findings]))
    else:
        _print(grader, form, report.spec, findings, data or [], report.isolation)
    if failed:
        raise typer.Exit(1)


def _job_findings(source: GraderSource) -> list[Finding]:
    """A job's hyperparameters that OpenAI would refuse (and ``export config`` cannot carry)."""
    try:
        job_settings(source)
    except DataError as exc:
        return [
            Finding("error", message, path=path)
            for path, _, message in (line.partition(": ") for line in str(exc).splitlines())
        ]
    return []


def _print(
    grader: Path,
    form: str,
    spec: Any,
    findings: list[Finding],
    data: list[Path],
    isolation: dict[str, tuple[str, str]],
) -> None:
    if form:
        err.print(f"read {grader} as {form}", highlight=False)
    for f in findings:
        where = f"[bold]{f.path}[/]: " if f.path and not f.file else ""
        text = str(f) if f.file else f.message
        if f.level == "error":
            err.print(f"  [red]✗[/] {where}{text}", highlight=False)
        else:
            err.print(f"[yellow]warning:[/] {where}{text}", highlight=False)
    errors = sum(f.level == "error" for f in findings)
    if errors:
        err.print(f"[bold red]{grader}: invalid[/] ({errors} problem(s))")
        return
    assert spec is not None
    checked = f"; {len(data)} data file(s) check out" if data else ""
    out.print(f"[green]✓[/] {grader}: valid {spec.type} grader [bold]{spec.name or '(unnamed)'}[/]{checked}")
    for path, (level, why) in isolation.items():
        out.print(f"  isolation of {path or 'the grader'}: {level} ({why})", highlight=False)
