"""``compare.json`` and ``summary.md`` of ``rftgrade compare`` (and ``series.json`` for
several checkpoints): the verdict in sentences.

The sentences say what the numbers allow: a gain whose interval lies above zero (with
the permutation test agreeing) is "better", one below is "worse", anything else is
"no clear change" (however the means moved), and every flagged check gets its line
with what to read next.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rftgrade.evaluate._report import _fmt

if TYPE_CHECKING:
    from rftgrade.evaluate._compare_series import Series

__all__ = [
    "compare_verdict",
    "render_compare_markdown",
    "render_series_markdown",
    "series_verdict",
    "write_compare",
    "write_series",
]


def _signed(value: float | None) -> str:
    return "-" if value is None else f"{value:+.3f}"


def compare_verdict(report: dict[str, Any]) -> list[str]:
    """Plain sentences: did B beat A, by how much, and what to check before believing it."""
    a, b = report["a"], report["b"]
    ci = report["ci"]
    level = f"{report['ci_level']:.0%}"
    span = f"{level} interval {_signed(ci[0])} to {_signed(ci[1])}" if ci else "too few rows for an interval"
    p = report["p_value"]
    p_text = f", p = {p:.3g}" if p is not None else ""
    head = {
        "better": f"**{b['model']} scores higher than {a['model']}**",
        "worse": f"**{b['model']} scores lower than {a['model']}**",
        "no clear change": f"**No clear change from {a['model']} to {b['model']}**",
    }[report["verdict"]]
    lines = [
        f"{head}: mean reward {a['mean_reward']:.3f} -> {b['mean_reward']:.3f}, gain "
        f"{_signed(report['gain'])} ({span}{p_text}) over the {report['rows_compared']} rows both runs scored."
    ]
    lines.append(
        f"{report['rows_improved']} rows improved, {report['rows_regressed']} regressed, "
        f"{report['rows_unchanged']} unchanged."
    )
    if report["verdict"] == "no clear change" and ci and (ci[0] > 0 or ci[1] < 0):
        moved = report["rows_improved"] + report["rows_regressed"]
        lines.append(
            f"The interval excludes 0, but the permutation test does not reject no change at {level} "
            f"(p = {p:.3g}): {moved} rows moved, too few to tell, so the verdict is no clear change."
        )
    flagged = [c for c in report["checks"] if c["flagged"]]
    if flagged:
        lines.append(
            f"**Read before trusting the gain**: {len(flagged)} sign(s) of a policy that may have "
            "learned the grader rather than the task:"
        )
        lines += [f"- {c['message']}" for c in flagged]
    else:
        lines.append(
            "No sign of a grader hack in the samples (length, truncation, error flags, repeated replies)."
        )
    za, zb = a["share_zero_variance"], b["share_zero_variance"]
    if zb > za:
        lines.append(
            f"Rows with no learning signal went from {za:.0%} to {zb:.0%} "
            f"({b['share_all_max']:.0%} always solved): the next round needs harder rows or a finer grader."
        )
    if report["rows_left_out"]:
        lines.append(f"{len(report['rows_left_out'])} rows were left out (see `rows_left_out`).")
    lines += [f"Warning: {w}" for w in report["warnings"]]
    return lines


def _reply(text: str | None) -> str:
    if text is None:
        return "-"
    one_line = " ".join(text.split())
    return "`" + one_line.replace("`", "'").replace("|", "\\|") + "`" if one_line else "(empty)"


def render_compare_markdown(report: dict[str, Any]) -> str:
    """``summary.md``: the verdict, the two runs side by side, the checks and the rows that moved most."""
    a, b = report["a"], report["b"]
    out = ["# rftgrade compare", ""]
    out += [line if line.startswith("- ") else line + "\n" for line in compare_verdict(report)]
    out += ["", "| | A | B | B - A |", "|---|---:|---:|---:|"]
    out.append(f"| model | {a['model']} | {b['model']} | |")
    out.append(
        f"| mean reward | {a['mean_reward']:.3f} | {b['mean_reward']:.3f} | {_signed(report['gain'])} |"
    )
    for k, va in a["pass_at_k"].items():
        vb = b["pass_at_k"].get(k)
        delta = vb - va if va is not None and vb is not None else None
        out.append(f"| pass@{k} | {_fmt(va)} | {_fmt(vb)} | {_signed(delta)} |")
    for key, name in (
        ("share_zero_variance", "rows with no signal"),
        ("share_all_max", "rows always solved"),
    ):
        out.append(f"| {name} | {a[key]:.0%} | {b[key]:.0%} | |")
    out += ["", "## Checks", "", "| check | A | B | flagged | |", "|---|---:|---:|---|---|"]
    for c in report["checks"]:
        va, vb = c["a"], c["b"]
        if isinstance(va, dict):
            va = ", ".join(f"{k} {v:.0%}" for k, v in sorted(va.items())) or "none"
            vb = ", ".join(f"{k} {v:.0%}" for k, v in sorted(vb.items())) or "none"
        elif isinstance(va, float) and c["check"] != "reply_length":
            va, vb = f"{va:.0%}", f"{vb:.0%}"
        else:
            va, vb = _fmt(va, 0), _fmt(vb, 0)
        out.append(f"| {c['check']} | {va} | {vb} | {'**yes**' if c['flagged'] else 'no'} | {c['message']} |")
    for title, key in (("Rows that gained most", "top_gains"), ("Rows that lost most", "top_losses")):
        if report[key]:
            out += [
                "",
                f"## {title}",
                "",
                "| row | line | A | B | B's reply | A's reply |",
                "|---:|---:|---:|---:|---|---|",
            ]
            for r in report[key]:
                out.append(
                    f"| {r['row']} | {r['line']} | {r['a_mean']:.3f} | {r['b_mean']:.3f} | "
                    f"{_reply(r['b_reply'])} | {_reply(r['a_reply'])} |"
                )
    out += ["", f"Method: {report['method']['interval']}; {report['method']['test']}.", ""]
    return "\n".join(out)


def write_compare(report: dict[str, Any], out: Path) -> dict[str, Path]:
    """Write ``compare.json`` and ``summary.md`` into ``out`` (made if missing)."""
    out.mkdir(parents=True, exist_ok=True)
    paths = {"compare": out / "compare.json", "summary": out / "summary.md"}
    paths["compare"].write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    paths["summary"].write_text(render_compare_markdown(report), encoding="utf-8")
    return paths


def _interval_text(ci: list[float] | None) -> str:
    return f"{_signed(ci[0])} to {_signed(ci[1])}" if ci else "-"


def series_verdict(summary: dict[str, Any]) -> list[str]:
    """Plain sentences over several checkpoints: which are shown better, which to read first."""
    rows = summary["candidates"]
    base = summary["base"]["model"] or summary["base"]["dir"]
    m = len(rows)
    lines = [
        f"{m} runs against {base}; the {m} intervals hold together at {summary['ci_level']:.0%} "
        f"(each at {summary['each_ci_level']:.2%}: looking at {m} checkpoints is looking {m} times)."
    ]
    better, worse = summary["shown_better"], summary["shown_worse"]
    best = next(r for r in rows if r["label"] == summary["highest_gain"])
    if better:
        lines.append(f"**Shown better than {base}**: {', '.join(better)}.")
    else:
        lines.append(f"**None is shown better than {base}.**")
    if worse:
        lines.append(f"Shown worse: {', '.join(worse)}.")
    lines.append(
        f"Highest gain: **{best['label']}** ({_signed(best['gain'])}, interval "
        f"{_interval_text(best['ci'])}). The highest of {m} gains on the same rows is partly luck: "
        "confirm the pick on rows it was not picked on (a held-out split) before shipping it."
    )
    if best["flags"]:
        clean = summary["highest_gain_unflagged"]
        lines.append(
            f"{best['label']} is flagged ({', '.join(best['flags'])}): read its summary.md before choosing it."
            + (f" Highest gain without a flag: {clean}." if clean else " Every run is flagged.")
        )
    for check, first in summary["first_flagged"].items():
        flagged = [r["label"] for r in rows if check in r["flags"]]
        where = f"on {first} only" if flagged == [first] else f"from {first} ({', '.join(flagged)})"
        lines.append(f"`{check}` flagged {where}: read that run's summary.md before trusting its gain.")
    lines += [f"Warning ({r['label']}): {w}" for r in rows for w in r["warnings"]]
    return lines


def render_series_markdown(summary: dict[str, Any], dirs: dict[str, str] | None = None) -> str:
    """The series' ``summary.md``: the sentences, then one table row a checkpoint (linked to its own summary)."""
    out = ["# rftgrade compare: checkpoints", ""]
    out += [line + "\n" for line in series_verdict(summary)]
    level = f"{summary['ci_level']:.0%}"
    out += [
        "",
        f"| run | model | rows | mean reward | gain | interval (all at {level}) | p (x{len(summary['candidates'])}) | verdict | flags |",
        "|---|---|---:|---:|---:|---|---:|---|---|",
        f"| base | {summary['base']['model']} | | {summary['base']['mean_reward']:.3f} | | | | | |",
    ]
    for r in summary["candidates"]:
        name = f"[{r['label']}]({dirs[r['label']]}/summary.md)" if dirs else r["label"]
        p = "-" if r["p_adjusted"] is None else f"{r['p_adjusted']:.3g}"
        out.append(
            f"| {name} | {r['model']} | {r['rows_compared']} | {r['mean_reward']:.3f} | "
            f"{_signed(r['gain'])} | {_interval_text(r['ci'])} | {p} | {r['verdict']} | "
            f"{', '.join(r['flags']) or '-'} |"
        )
    out += ["", f"Method: {summary['method']['adjustment']}; {summary['method']['each']['interval']}.", ""]
    return "\n".join(out)


def _slug(index: int, label: str) -> str:
    safe = "".join(c if c.isalnum() or c in "-_." else "-" for c in label).strip("-.") or "run"
    return f"{index + 1}-{safe}"


def write_series(series: Series, out: Path) -> dict[str, Path]:
    """Write ``series.json`` and ``summary.md`` into ``out``, and each candidate's
    ``compare.json`` and ``summary.md`` into ``out/N-LABEL/``."""
    out.mkdir(parents=True, exist_ok=True)
    dirs = {r["label"]: _slug(r["index"], r["label"]) for r in series.summary["candidates"]}
    summary = {
        **series.summary,
        "candidates": [
            {**r, "report": f"{dirs[r['label']]}/compare.json"} for r in series.summary["candidates"]
        ],
    }
    for row, report in zip(series.summary["candidates"], series.reports, strict=True):
        write_compare(report, out / dirs[row["label"]])
    paths = {"series": out / "series.json", "summary": out / "summary.md"}
    paths["series"].write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    paths["summary"].write_text(render_series_markdown(summary, dirs), encoding="utf-8")
    return paths
