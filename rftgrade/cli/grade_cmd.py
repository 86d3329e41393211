"""``rftgrade run`` (one sample) and ``rftgrade grade`` (a JSONL file): the grading commands."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.console import Console

from rftgrade._result import GradeResult
from rftgrade.cli._io import at_value, print_summary
from rftgrade.cli._runtime import RayOption, SandboxOption, open_grader

__all__ = ["grade_cmd", "run_cmd"]

out = Console()
err = Console(stderr=True)


def _print_result(result: GradeResult) -> None:
    colour = "green" if result.ok else "red"
    out.print(
        f"reward: [bold {colour}]{result.reward:.6g}[/]  ({result.type} {result.name!r}, {result.execution_time * 1000:.1f} ms)"
    )
    for key, value in result.sub_rewards.items():
        out.print(f"  {key}: {value:.6g}")
    for flag in result.errors.raised():
        out.print(f"  [red]{flag}[/]")
    for message in result.error_messages:
        out.print(f"  [dim]{message}[/]", highlight=False)


def run_cmd(
    grader: Annotated[Path, typer.Argument(help="Grader JSON file.")],
    sample: Annotated[
        str, typer.Option(help="The model's output: text or a sample JSON object; @path reads a file.")
    ],
    item: Annotated[str, typer.Option(help="The dataset row as a JSON object; @path reads a file.")] = "{}",
    as_json: Annotated[
        bool, typer.Option("--json", help="Print OpenAI's graders/run response JSON.")
    ] = False,
    sandbox: SandboxOption = None,
) -> None:
    """Grade one sample against one item."""
    sample_text = at_value(sample)
    try:
        item_value = json.loads(at_value(item))
    except json.JSONDecodeError as exc:
        err.print(
            f'[red]error:[/] --item is not valid JSON: {exc.msg}; pass an object like \'{{"answer": "42"}}\''
        )
        raise typer.Exit(2) from None
    if not isinstance(item_value, dict):
        err.print("[red]error:[/] --item must be a JSON object")
        raise typer.Exit(2)
    sample_value: Any = sample_text
    stripped = sample_text.strip()
    if stripped.startswith("{") and any(
        k in stripped for k in ('"output_text"', '"output_json"', '"choices"', '"output_tools"')
    ):
        try:
            sample_value = json.loads(stripped)
        except json.JSONDecodeError:
            sample_value = sample_text
    g = open_grader(grader, sandbox)
    try:
        result = g.run(sample_value, item_value)
    finally:
        g.close()
    if as_json:
        out.print_json(json.dumps(result.to_dict()))
    else:
        _print_result(result)


@contextmanager
def _progress_bar(show: bool, total: int) -> Iterator[Callable[[int], None] | None]:
    """A bar over ``total`` bytes while the block runs; yields what advances it
    (``None`` when no bar is shown: rich's progress module is then not imported)."""
    if not show:
        yield None
        return
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(
        TextColumn("grading"), BarColumn(), TimeRemainingColumn(), console=err, transient=True
    ) as bar:
        task = bar.add_task("grade", total=total)
        yield lambda n: bar.advance(task, n)


def grade_cmd(
    grader: Annotated[Path, typer.Argument(help="Grader JSON file.")],
    data: Annotated[
        Path,
        typer.Argument(help='JSONL rows: OpenAI RFT rows with a sample, or {"item": {...}, "sample": ...}.'),
    ],
    output: Annotated[
        Optional[Path], typer.Option("-o", "--output", help="Write one result per row (JSONL).")
    ] = None,
    compact: Annotated[
        bool,
        typer.Option(
            "--compact", help='Write {"reward", "errors"} lines (the flags raised), not full results.'
        ),
    ] = False,
    batch_size: Annotated[int, typer.Option(help="Rows sent to the grader at once.", min=1)] = 2048,
    sandbox: SandboxOption = None,
    ray: RayOption = None,
) -> None:
    """Grade every row of a JSONL file; results keep the input order (identical rows are graded once)."""
    if not data.is_file():
        err.print(f"[red]error:[/] no data file at {data}")
        raise typer.Exit(2)
    g = open_grader(grader, sandbox, ray)
    g.warm()  # the sandbox's workers start while the rest is imported and the file opened

    from rftgrade._gradefile import grade_jsonl

    sink = output.open("wb") if output else sys.stdout.buffer

    def skipped(message: str) -> None:
        err.print(f"[yellow]skipped[/] {message}", highlight=False)

    # A bar only where someone can watch it: not between results on stdout, and not
    # into a log or a pipe (where rich would draw nothing but still run its thread).
    show_bar = output is not None and err.is_terminal
    try:
        with _progress_bar(show_bar, data.stat().st_size) as advance:
            summary = grade_jsonl(
                g, data, sink, compact=compact, batch_rows=batch_size, on_skip=skipped, on_progress=advance
            )
    finally:
        if output:
            sink.close()
        else:
            sink.flush()
        g.close()
    print_summary(err if output is None else out, summary)
    if not summary.rows:
        err.print(f"[red]error:[/] {data} has no rows")
        raise typer.Exit(1)
    if summary.unreadable == summary.rows:
        err.print(f"[red]error:[/] no row of {data} could be read (see above); nothing was graded")
        raise typer.Exit(1)
