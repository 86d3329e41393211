"""``rftgrade calibrate`` and ``rftgrade check``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.console import Console
from rich.table import Table

from rftgrade.cli._io import iter_jsonl
from rftgrade.cli._runtime import SandboxOption

__all__ = ["calibrate_cmd", "check_cmd"]

console = Console()
err = Console(stderr=True)


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"


def _rows(path: Path, *, expand_samples: bool = False) -> list[dict[str, Any]]:
    rows = []
    for entry in iter_jsonl(path, expand_samples=expand_samples):
        if entry.row is None:
            err.print(f"[yellow]skipped[/] {entry.error}", highlight=False)
        else:
            rows.append(entry.row)
    if not rows:
        err.print(f"[red]error:[/] no usable rows in {path}")
        raise typer.Exit(2)
    return rows


def _grader(path: Path, sandbox: str | None) -> Any:
    from rftgrade.cli._runtime import open_grader

    # Repeats must reach the judge: no reply cache.
    return open_grader(path, sandbox, judge_cache=False)


def _exit_on_gates(report: dict[str, Any]) -> None:
    """Say whether every gate passed; exit 1 naming each that failed."""
    if report["passed"]:
        console.print("[green]✓ all gates passed[/]")
        return
    for failure in report["gate_failures"]:
        console.print(f"[red]✗[/] {failure}", highlight=False)
    raise typer.Exit(1)


def _range(value: Optional[str]) -> tuple[float, float] | None:
    if not value:
        return None
    lo, _, hi = value.partition(",")
    return float(lo), float(hi)


def calibrate_cmd(
    grader: Annotated[Path, typer.Argument(help="Grader JSON (a model grader, or any grader).")],
    labels: Annotated[
        Path, typer.Argument(help='JSONL rows {"item", "sample", "label"}; label = number or label name.')
    ],
    repeats: Annotated[int, typer.Option("--repeats", "-k", help="Times the grader runs per row.")] = 3,
    out: Annotated[
        Path, typer.Option("--out", help="Directory for report.html, report.json, summary.md.")
    ] = Path("calibration"),
    threshold: Annotated[
        Optional[float], typer.Option(help="Pass mark (default: middle of the range).")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the bootstrap and the probes.")] = 0,
    bootstrap: Annotated[int, typer.Option(help="Bootstrap resamples for CIs.")] = 1000,
    score_range: Annotated[
        Optional[str], typer.Option("--range", help="lo,hi for python/multi graders.")
    ] = None,
    probes: Annotated[bool, typer.Option(help="Run the cheap-answer probes.")] = True,
    min_kappa: Annotated[
        Optional[float],
        typer.Option(help="Gate: quadratic Cohen's kappa with the labels (negative to disable)."),
    ] = 0.4,
    min_spearman: Annotated[Optional[float], typer.Option(help="Gate: Spearman rho with the labels.")] = None,
    min_pass_agreement: Annotated[
        Optional[float], typer.Option(help="Gate: pass/fail agreement at the threshold.")
    ] = None,
    max_probe_max_rate: Annotated[
        float, typer.Option(help="Gate: share of a should-fail probe's answers scored the maximum.")
    ] = 0.5,
    max_failure_rate: Annotated[float, typer.Option(help="Gate: share of judge calls that fail.")] = 0.05,
    sandbox: SandboxOption = None,
) -> None:
    """Judge the judge: agreement with human labels, calibration, stability, probes. Exit 1 when a gate fails."""
    from rftgrade.quality import CalibrationGates, calibrate, write_report

    rows = _rows(labels)
    g = _grader(grader, sandbox)
    try:
        report = calibrate(
            g,
            rows,
            repeats=repeats,
            threshold=threshold,
            seed=seed,
            n_boot=bootstrap,
            score_range=_range(score_range),
            probes=probes,
            gates=CalibrationGates(
                min_kappa=min_kappa if min_kappa is None or min_kappa >= -1 else None,
                min_spearman=min_spearman,
                min_pass_agreement=min_pass_agreement,
                max_probe_max_rate=max_probe_max_rate,
                max_failure_rate=max_failure_rate,
            ),
        )
    except ValueError as exc:
        err.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from None
    finally:
        g.close()
    paths = write_report(report, out)
    console.print((out / "summary.md").read_text(), markup=False, highlight=False)
    for kind, path in paths.items():
        err.print(f"wrote {kind}: {path}")
    _exit_on_gates(report)


def check_cmd(
    grader: Annotated[Path, typer.Argument(help="Grader JSON.")],
    data: Annotated[
        Path, typer.Argument(help='JSONL rows {"item", "sample", "group"?}: several samples per prompt.')
    ],
    group_key: Annotated[
        Optional[str], typer.Option(help="Item field that identifies the prompt (default: the whole item).")
    ] = None,
    max_error_rate: Annotated[float, typer.Option(help="Gate: share of samples with an error flag.")] = 0.05,
    max_flat_group_share: Annotated[
        float, typer.Option(help="Gate: share of groups all-min or all-max.")
    ] = 0.5,
    max_probe_score: Annotated[
        float, typer.Option(help="Gate: normalised mean score of any should-fail probe.")
    ] = 0.5,
    score_range: Annotated[
        Optional[str], typer.Option("--range", help="lo,hi for python/multi graders.")
    ] = None,
    probes: Annotated[bool, typer.Option(help="Run the cheap-answer probes.")] = True,
    json_out: Annotated[Optional[Path], typer.Option("--json", help="Write the full report as JSON.")] = None,
    sandbox: SandboxOption = None,
) -> None:
    """Check a grader is fit to train against; exits 1 when a gate fails (guards CI)."""
    from rftgrade.quality.check import Gates, check_grader

    rows = _rows(data, expand_samples=True)
    g = _grader(grader, sandbox)
    try:
        report = check_grader(
            g,
            rows,
            gates=Gates(
                max_error_rate=max_error_rate,
                max_flat_group_share=max_flat_group_share,
                max_probe_score=max_probe_score,
            ),
            group_key=group_key,
            score_range=_range(score_range),
            probes=probes,
        )
    finally:
        g.close()
    if json_out:
        json_out.write_text(json.dumps(report, indent=2, default=str))
    table = Table(title=f"rftgrade check: {g.name or g.id}", show_header=False)
    r = report["reward"]
    table.add_row("samples / groups", f"{report['samples']} / {report['groups']}")
    table.add_row("reward mean / sd", f"{r['mean']:.3f} / {r['sd']:.3f}")
    flat = report["flat_groups"]
    table.add_row(
        "flat groups (all / all-min / all-max / other)",
        " / ".join(
            _pct(flat[k]) for k in ("flat_share", "all_min_share", "all_max_share", "flat_other_share")
        ),
    )
    sd = report["mean_within_group_sd"]
    table.add_row("mean within-group SD", "n/a" if sd is None else f"{sd:.3f}")
    by_flag = ", ".join(f"{k}: {v}" for k, v in report["errors"]["by_flag"].items())
    table.add_row("error rate", f"{report['errors']['rate']:.1%}" + (f" ({by_flag})" if by_flag else ""))
    console.print(table)
    if report.get("probes"):
        pt = Table(title="cheap-answer probes")
        for col in ("probe", "expected", "mean score", "max-score rate", ""):
            pt.add_column(col)
        for name, p in report["probes"].items():
            pt.add_row(
                name,
                p["expect"],
                f"{p['mean_score']:.3f}",
                f"{p['max_score_rate']:.2f}",
                "[red]flagged[/]" if p["flagged"] else "ok",
            )
        console.print(pt)
    _exit_on_gates(report)
