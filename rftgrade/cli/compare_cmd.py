"""``rftgrade compare``: did training help (a face over :func:`rftgrade.evaluate.compare_runs`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

__all__ = ["compare_cmd"]

console = Console()
err = Console(stderr=True)


def compare_cmd(
    base: Annotated[Path, typer.Argument(help="The base model's `rftgrade eval --out` directory (A).")],
    tuned: Annotated[Path, typer.Argument(help="The tuned model's `rftgrade eval --out` directory (B).")],
    out: Annotated[
        Optional[Path], typer.Option("--out", help="Directory for compare.json and summary.md.")
    ] = None,
    min_gain: Annotated[
        Optional[float],
        typer.Option(
            "--min-gain",
            help="Exit 1 unless the gain's whole confidence interval lies above this (0: B must be "
            "shown better than A).",
        ),
    ] = None,
    confidence: Annotated[
        float, typer.Option("--confidence", min=0.5, max=0.999, help="Level of the gain's interval.")
    ] = 0.95,
    resamples: Annotated[
        int, typer.Option("--resamples", min=99, help="Bootstrap and permutation resamples.")
    ] = 9999,
    seed: Annotated[
        int, typer.Option("--seed", help="Seed of the resampling (reports are reproducible).")
    ] = 0,
) -> None:
    """Compare two evals of one dataset and grader: the gain with its interval, and signs of a grader hack.

    Exits 1 when --min-gain is given and the gain is not shown above it; 2 when the two
    directories cannot be compared (not evals, different graders, no row in common).
    """
    from rftgrade._exceptions import RftgradeError
    from rftgrade.evaluate import compare_runs, load_run
    from rftgrade.evaluate._compare_report import compare_verdict, write_compare

    try:
        import scipy  # noqa: F401
    except ImportError:
        err.print("[red]error:[/] rftgrade compare needs scipy: pip install 'rftgrade[quality]'")
        raise typer.Exit(2) from None
    try:
        report = compare_runs(
            load_run(base), load_run(tuned), level=confidence, resamples=resamples, seed=seed
        )
    except RftgradeError as exc:
        err.print(f"[red]error:[/] {exc}", highlight=False)
        raise typer.Exit(2) from None
    a, b = report["a"], report["b"]
    table = Table(title="rftgrade compare")
    table.add_column("")
    table.add_column(f"A: {a['model']}", justify="right")
    table.add_column(f"B: {b['model']}", justify="right")
    table.add_column("B - A", justify="right")
    table.add_row(
        "mean reward", f"{a['mean_reward']:.3f}", f"{b['mean_reward']:.3f}", f"{report['gain']:+.3f}"
    )
    for k, va in a["pass_at_k"].items():
        vb = b["pass_at_k"].get(k)
        if va is not None and vb is not None:
            table.add_row(f"pass@{k}", f"{va:.3f}", f"{vb:.3f}", f"{vb - va:+.3f}")
    table.add_row(
        "rows with no signal", f"{a['share_zero_variance']:.0%}", f"{b['share_zero_variance']:.0%}", ""
    )
    console.print(table)
    for line in compare_verdict(report):
        console.print(line.replace("**", ""), highlight=False, markup=False)
    if out is not None:
        for kind, path in write_compare(report, out).items():
            err.print(f"wrote {kind}: {path}", highlight=False)
    if min_gain is not None:
        ci = report["ci"]
        if ci is None or ci[0] <= min_gain:
            low = "no interval (too few rows)" if ci is None else f"its interval starts at {ci[0]:+.3f}"
            err.print(
                f"[red]gate failed:[/] the gain {report['gain']:+.3f} is not shown above --min-gain "
                f"{min_gain:+.3f}: {low}",
                highlight=False,
            )
            raise typer.Exit(1)
