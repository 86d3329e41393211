"""``rftgrade eval``: the RFT-readiness run (a face over :func:`rftgrade.evaluate.run_eval`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from rftgrade.cli._runtime import SandboxOption

__all__ = ["eval_cmd"]

console = Console()
err = Console(stderr=True)


def _grader(path: Path, sandbox: str | None) -> tuple[Any, str, dict[str, Any] | None]:
    """The grader, built as every CLI command builds it, with the form it was read as."""
    from rftgrade._exceptions import GraderValidationError
    from rftgrade._forms import read_grader_source
    from rftgrade.cli._runtime import open_grader

    try:
        source = read_grader_source(path)
    except GraderValidationError:
        source = None  # open_grader reports it with every problem
    if source is not None:
        err.print(f"read {path} as {source.describe()}", highlight=False)
    grader = open_grader(path, sandbox, announce=False)
    assert source is not None  # open_grader has exited on an unreadable grader
    return grader, source.form, source.job


def eval_cmd(
    grader: Annotated[Path, typer.Argument(help="Grader JSON, or the fine-tuning job that holds it.")],
    data: Annotated[Path, typer.Argument(help='RFT dataset JSONL: {"messages": [...], ...fields}.')],
    model: Annotated[str, typer.Option("--model", help="Model name the endpoint serves.")],
    out: Annotated[
        Path, typer.Option("--out", help="Directory for samples.jsonl, eval.json, report.html, summary.md.")
    ],
    samples_per_row: Annotated[int, typer.Option("-n", min=1, help="Samples per row.")] = 8,
    base_url: Annotated[
        Optional[str],
        typer.Option("--base-url", help="OpenAI-compatible endpoint (default $OPENAI_BASE_URL)."),
    ] = None,
    concurrency: Annotated[int, typer.Option(min=1, help="Requests in flight at once.")] = 32,
    temperature: Annotated[float, typer.Option(help="Sampling temperature.")] = 1.0,
    max_tokens: Annotated[
        Optional[int], typer.Option("--max-tokens", help="Cap on each sample's tokens.")
    ] = None,
    pass_threshold: Annotated[
        Optional[float],
        typer.Option(
            "--pass-threshold", help="Pass mark for pass@k (default: the grader's pass_threshold, else 1.0)."
        ),
    ] = None,
    samples: Annotated[
        Optional[Path],
        typer.Option(
            "--samples", help='Grade these samples ({"row", "n", "sample"} lines) instead of sampling.'
        ),
    ] = None,
    timeout: Annotated[
        float, typer.Option(help="Seconds one request may take before it is retried.")
    ] = 300.0,
    retries: Annotated[int, typer.Option(min=0, help="Retries per sample (429, 5xx, timeouts).")] = 5,
    retry_backoff: Annotated[
        float, typer.Option(help="Base delay of the exponential backoff, seconds.")
    ] = 1.0,
    reasoning: Annotated[
        Optional[str],
        typer.Option(
            help="strip: grade each reply's final answer, without a reasoning model's "
            "<think>...</think> before it, as OpenAI's grader saw it (and as the trainer adapters do); "
            "keep: grade all of it ($RFTGRADE_REASONING; default strip).",
        ),
    ] = None,
    tool_calls: Annotated[
        Optional[str],
        typer.Option(
            "--tool-calls",
            help="parse: tool calls an endpoint without a tool parser leaves in a reply's text "
            "(<tool_call>...</tool_call>, gpt-oss's) are its sample.output_tools, as the trainer adapters "
            "read them; keep: they stay text ($RFTGRADE_TOOL_CALLS; default parse).",
        ),
    ] = None,
    sandbox: SandboxOption = None,
) -> None:
    """Evaluate the base model first: sample -n times per row, grade, and say which rows can teach GRPO.

    Exits 1 when some samples could not be had from the endpoint (their rows are
    marked not sampled; run again with the same --out to fill them in).
    """
    from rftgrade._exceptions import RftgradeError
    from rftgrade._reasoning import reasoning_mode
    from rftgrade._toolcalls import tool_call_mode
    from rftgrade.evaluate import EvalConfig, EvalProgress, run_eval
    from rftgrade.evaluate._report import verdict

    if not data.is_file():
        err.print(f"[red]error:[/] no dataset at {data}")
        raise typer.Exit(2)
    try:
        reasoning = reasoning_mode(reasoning)
        tool_calls = tool_call_mode(tool_calls)
    except ValueError as exc:
        err.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from None
    if samples is not None and not samples.is_file():
        err.print(f"[red]error:[/] no samples file at {samples} (--samples)")
        raise typer.Exit(2)
    g, form, job = _grader(grader, sandbox)
    config = EvalConfig(
        model=model,
        samples_per_row=samples_per_row,
        base_url=base_url,
        concurrency=concurrency,
        temperature=temperature,
        max_tokens=max_tokens,
        pass_threshold=pass_threshold,
        timeout=timeout,
        max_retries=retries,
        backoff=retry_backoff,
        reasoning=reasoning,
        tool_calls=tool_calls,
    )
    with Progress(
        TextColumn("grading" if samples else "sampling + grading"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[note]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=True,
    ) as progress:
        task = progress.add_task("eval", total=None, note="")

        def update(p: EvalProgress) -> None:
            note = f"reused {p.reused}" if p.reused else ""
            if p.not_sampled:
                note += f"  [red]not sampled {p.not_sampled}[/]"
            progress.update(task, total=p.total, completed=p.done, note=note)

        try:
            outcome = run_eval(
                g, data, out, config, samples_file=samples, grader_form=form, job=job, on_progress=update
            )
        except RftgradeError as exc:
            err.print(f"[red]error:[/] {exc}")
            raise typer.Exit(2) from None
        finally:
            g.close()
    for problem in outcome.problems:
        err.print(f"[yellow]skipped[/] {data} {problem}", highlight=False)
    for problem in outcome.sample_problems:
        err.print(f"[yellow]skipped[/] {samples or out / 'samples.jsonl'} {problem}", highlight=False)
    report = outcome.report
    table = Table(title=f"rftgrade eval: {model}", show_header=False)
    table.add_row("rows scored / rows", f"{report['rows_scored']} / {report['rows']}")
    table.add_row("samples per row", str(report["samples_per_row"]))
    for key in ("mean_reward", "mean_row_std", "share_all_min", "share_all_max", "share_zero_variance"):
        value = report[key]
        table.add_row(key, f"{value:.3f}" if isinstance(value, float) else str(value))
    table.add_row(
        "pass@k",
        "  ".join(f"{k}: {v:.3f}" for k, v in report["pass_at_k"].items() if v is not None) or "-",
    )
    if report["errors_by_flag"]:
        table.add_row("grader errors", ", ".join(f"{k}: {v}" for k, v in report["errors_by_flag"].items()))
    console.print(table)
    for line in verdict(report):
        console.print(line.replace("**", ""), highlight=False, markup=False)
    for kind, path in outcome.paths.items():
        err.print(f"wrote {kind}: {path}", highlight=False)
    if outcome.not_sampled:
        reasons = {m for r in report["per_row"] for m in r.get("not_sampled_because", [])}
        err.print(
            f"[red]error:[/] {outcome.not_sampled} samples were not sampled "
            f"(rows {report['rows_not_sampled'][:20]}); e.g. {sorted(reasons)[:2]}",
            highlight=False,
        )
        raise typer.Exit(1)
