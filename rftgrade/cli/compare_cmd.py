"""``rftgrade compare``: did training help, and which checkpoint to keep (a face over
:func:`rftgrade.evaluate.compare_runs` and :func:`rftgrade.evaluate.compare_series`)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer
from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from rftgrade.evaluate import Series

__all__ = ["compare_cmd"]

console = Console()
err = Console(stderr=True)


def compare_cmd(
    base: Annotated[Path, typer.Argument(help="The base model's `rftgrade eval --out` directory (A).")],
    tuned: Annotated[
        list[Path],
        typer.Argument(
            help="The tuned model's `rftgrade eval --out` directory (B); several checkpoints' "
            "directories, in training order, to pick one.",
        ),
    ],
    out: Annotated[
        Optional[Path],
        typer.Option("--out", help="Directory for compare.json and summary.md (series.json with several)."),
    ] = None,
    min_gain: Annotated[
        Optional[float],
        typer.Option(
            "--min-gain",
            help="Exit 1 unless the gain's whole confidence interval lies above this, and for 0 or "
            "more the verdict is better (0: B must be shown better than A; with several "
            "checkpoints, at least one must be).",
        ),
    ] = None,
    confidence: Annotated[
        float,
        typer.Option(
            "--confidence",
            min=0.5,
            max=0.999,
            help="Level of the gain's interval (with several checkpoints, of all their intervals together).",
        ),
    ] = 0.95,
    resamples: Annotated[
        int, typer.Option("--resamples", min=99, help="Bootstrap and permutation resamples.")
    ] = 9999,
    seed: Annotated[
        int, typer.Option("--seed", help="Seed of the resampling (reports are reproducible).")
    ] = 0,
) -> None:
    """Compare two evals of one dataset and grader: the gain with its interval, and signs of a grader hack.

    With several tuned directories (checkpoints, in training order), each is compared with
    the base, the intervals hold together at --confidence, and the report says which are
    shown better, which gained most, and where a sign of a hack first appeared.

    Exits 1 when --min-gain is given and no gain is shown above it; 2 when the
    directories cannot be compared (not evals, different graders, no row in common).
    """
    from rftgrade._exceptions import RftgradeError
    from rftgrade.evaluate import compare_runs, compare_series, load_run

    try:
        import scipy  # noqa: F401
    except ImportError:
        err.print("[red]error:[/] rftgrade compare needs scipy: pip install 'rftgrade[quality]'")
        raise typer.Exit(2) from None
    try:
        if len(tuned) > 1:
            series = compare_series(load_run(base), tuned, level=confidence, resamples=resamples, seed=seed)
        else:
            report = compare_runs(
                load_run(base), load_run(tuned[0]), level=confidence, resamples=resamples, seed=seed
            )
    except RftgradeError as exc:
        err.print(f"[red]error:[/] {exc}", highlight=False)
        raise typer.Exit(2) from None
    if len(tuned) > 1:
        _series_out(series, out, min_gain)
    else:
        _one_out(report, out, min_gain)


def _show(table: Table, lines: list[str], write: Callable[[], dict[str, Path]] | None) -> None:
    """The table and the verdict's sentences on stdout; then the files, named on stderr."""
    console.print(table)
    for line in lines:
        console.print(line.replace("**", ""), highlight=False, markup=False)
    if write is not None:
        for kind, path in write().items():
            err.print(f"wrote {kind}: {path}", highlight=False)


def _shown_above(ci: list[float] | None, verdict: str, min_gain: float) -> bool:
    # Above a gain of 0 or more, the verdict must be "better" too (the permutation test
    # agrees); a negative --min-gain (no worse than) needs the interval alone.
    return ci is not None and ci[0] > min_gain and (min_gain < 0 or verdict == "better")


def _one_out(report: dict[str, Any], out: Path | None, min_gain: float | None) -> None:
    from rftgrade.evaluate._compare_report import compare_verdict, write_compare

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
    _show(table, compare_verdict(report), None if out is None else lambda: write_compare(report, out))
    if min_gain is not None:
        ci = report["ci"]
        if not _shown_above(ci, report["verdict"], min_gain):
            low = "no interval (too few rows)" if ci is None else f"its interval starts at {ci[0]:+.3f}"
            if ci is not None and ci[0] > min_gain:
                low = f"the permutation test does not reject no change (p = {report['p_value']:.3g})"
            err.print(
                f"[red]gate failed:[/] the gain {report['gain']:+.3f} is not shown above --min-gain "
                f"{min_gain:+.3f}: {low}",
                highlight=False,
            )
            raise typer.Exit(1)


def _series_out(series: Series, out: Path | None, min_gain: float | None) -> None:
    from rftgrade.evaluate._compare_report import series_verdict, write_series

    summary = series.summary
    level = f"{summary['ci_level']:.0%}"
    table = Table(
        title=f"rftgrade compare: {len(summary['candidates'])} runs against {summary['base']['model']}"
    )
    for name in ("run", "mean reward", "gain", f"interval (all at {level})", "verdict", "flags"):
        table.add_column(name, justify="left" if name in ("run", "verdict", "flags") else "right")
    table.add_row("base", f"{summary['base']['mean_reward']:.3f}", "", "", "", "")
    for r in summary["candidates"]:
        ci = f"{r['ci'][0]:+.3f} to {r['ci'][1]:+.3f}" if r["ci"] else "-"
        table.add_row(
            r["label"],
            f"{r['mean_reward']:.3f}",
            f"{r['gain']:+.3f}",
            ci,
            r["verdict"],
            ", ".join(r["flags"]),
        )
    _show(table, series_verdict(summary), None if out is None else lambda: write_series(series, out))
    if min_gain is not None:
        above = [r["label"] for r in summary["candidates"] if _shown_above(r["ci"], r["verdict"], min_gain)]
        if not above:
            err.print(
                f"[red]gate failed:[/] no run's gain is shown above --min-gain {min_gain:+.3f} "
                f"(intervals at {level} together)",
                highlight=False,
            )
            raise typer.Exit(1)
        err.print(f"shown above --min-gain {min_gain:+.3f}: {', '.join(above)}", highlight=False)
