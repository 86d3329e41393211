"""``eval.json``, ``summary.md`` (the verdict) and a self-contained ``report.html``.

The HTML's plots are inline SVG from matplotlib: the page opens from a CI artifact
or an air-gapped machine with nothing to fetch.
"""

from __future__ import annotations

import html
import json
import math
from collections import Counter
from pathlib import Path
from typing import Any

from rftgrade._svg import figure_svg
from rftgrade.evaluate._data import EvalRow

__all__ = ["render_html", "render_markdown", "verdict", "write_outputs"]

_GOOD_SIGNAL_SHARE = 0.5
"""Below this share of rows with a reward spread, most GRPO groups teach nothing."""
_HIGH_ERROR_RATE = 0.05


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _rows(count: int, one: str, many: str) -> str:
    return f"{count} row {one}" if count == 1 else f"{count} rows {many}"


def _no_signal(report: dict[str, Any]) -> list[dict[str, Any]]:
    return [r for r in report["per_row"] if r["sampled"] and r["std"] == 0.0]


def verdict(report: dict[str, Any]) -> list[str]:
    """Plain sentences: how many rows give GRPO a signal, and what to do with the rest."""
    scored = report["rows_scored"]
    lines: list[str] = []
    if not scored:
        lines.append("No row has all its samples graded, so there is nothing to judge yet.")
    else:
        flat = round(report["share_zero_variance"] * scored)
        signal = scored - flat
        share = signal / scored
        all_min = round(report["share_all_min"] * scored)
        all_max = round(report["share_all_max"] * scored)
        other = flat - all_min - all_max
        ready = "ready for RFT" if share >= _GOOD_SIGNAL_SHARE else "NOT ready for RFT as it is"
        lines.append(
            f"**{signal} of {scored} rows ({share:.0%}) give GRPO a learning signal** (their "
            f"{report['samples_per_row']} samples do not all score the same): the dataset is {ready}."
        )
        if all_max:
            lines.append(
                f"- {_rows(all_max, 'is', 'are')} always solved (every sample at the top score): drop them, or make "
                "them harder; they cost compute and teach nothing."
            )
        if all_min:
            lines.append(
                f"- {_rows(all_min, 'is', 'are')} never solved (every sample at the bottom score): drop them, give "
                "the grader partial credit (a smoother grader, e.g. text_similarity or a score_model, so "
                "closer answers score higher), or check the reference answers are right."
            )
        if other:
            lines.append(
                f"- {_rows(other, 'gives', 'give')} every sample the same in-between score: the grader does not tell "
                "these samples apart; make it finer-grained."
            )
    samples = report["samples"]
    if samples["not_sampled"]:
        lines.append(
            f"- {samples['not_sampled']} samples were not sampled (the endpoint failed; "
            f"{len(report['rows_not_sampled'])} rows are left out of every figure, not scored 0). "
            "Run the same command again with the same --out to fill them in."
        )
    reasoning = report.get("reasoning") or {}
    if reasoning.get("ended_in_reasoning"):
        lines.append(
            f"- {reasoning['ended_in_reasoning']} samples ended inside the model's reasoning, before any "
            "answer, and were graded as no answer: raise --max-tokens (and the trainer's response "
            "length), or these rows look harder than they are."
        )
    if reasoning.get("with_reasoning"):
        how = (
            "graded with it (--reasoning keep), though OpenAI's grader saw the final answer alone"
            if reasoning.get("mode") == "keep"
            else "cut before grading, as OpenAI's grader saw the final answer alone (--reasoning keep grades it)"
        )
        lines.append(
            f"- {reasoning['with_reasoning']} samples hold the model's reasoning (<think>...</think>): {how}."
        )
    calls = report.get("tool_calls") or {}
    if calls.get("from_text"):
        lines.append(
            f"- {calls['from_text']} samples wrote their tool calls in the text (the endpoint parsed none; "
            "vLLM: --enable-auto-tool-choice --tool-call-parser): read from there as output_tools, as the "
            "trainer adapters read them."
        )
    graded = sum(len(r["rewards"]) for r in report["per_row"])
    errors = sum(report["errors_by_flag"].values())
    if graded and errors / graded > _HIGH_ERROR_RATE:
        flags = ", ".join(f"{k} ({v})" for k, v in report["errors_by_flag"].items())
        lines.append(
            f"- The grader flagged {errors} of {graded} samples ({flags}): fix the grader or the "
            "output format before training, or those rewards are noise."
        )
    if report["unreadable_lines"]:
        lines.append(f"- {len(report['unreadable_lines'])} dataset lines could not be read (see eval.json).")
    return lines


def render_markdown(report: dict[str, Any]) -> str:
    """``summary.md``: the verdict, then the headline numbers."""
    grader = report["grader"]
    out = [
        f"# RFT readiness: {report['model']} on {report['rows']} rows x {report['samples_per_row']} samples",
        "",
        f"Grader `{grader['name'] or grader['id']}` ({grader['type']}, read as {report['grader_form']}); "
        f"a sample passes at reward >= {report['pass_threshold']:g}.",
        "",
        "## Verdict",
        "",
        *verdict(report),
        "",
        "## Numbers",
        "",
        "| | |",
        "|---|---|",
        f"| rows scored | {report['rows_scored']} of {report['rows']} |",
        f"| mean reward | {_fmt(report['mean_reward'])} |",
        f"| mean within-row SD | {_fmt(report['mean_row_std'])} |",
        f"| rows all at min / all at max | {_fmt(report['share_all_min'])} / {_fmt(report['share_all_max'])} |",
        f"| rows with no spread (any value) | {_fmt(report['share_zero_variance'])} |",
    ]
    for k, value in report["pass_at_k"].items():
        out.append(f"| pass@{k} | {_fmt(value)} |")
    if report["errors_by_flag"]:
        out.append(
            f"| grader errors | {', '.join(f'{k}: {v}' for k, v in report['errors_by_flag'].items())} |"
        )
    job = report.get("job")
    if job:
        out += ["", "## Fine-tuning job", ""]
        out += [f"- {k}: `{json.dumps(v)}`" for k, v in job.items()]
    flat = _no_signal(report)
    if flat:
        out += ["", "## Rows with no learning signal", ""]
        out += [
            f"- row {r['row']} (line {r['line']}): every sample scored {r['rewards'][0]:g}" for r in flat[:50]
        ]
        if len(flat) > 50:
            out.append(f"- ... and {len(flat) - 50} more (eval.json `per_row`)")
    return "\n".join(out) + "\n"


def _plots(report: dict[str, Any]) -> dict[str, str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scored = [r for r in report["per_row"] if r["sampled"]]
    plots: dict[str, str] = {}
    rewards = [x for r in scored for x in r["rewards"]]
    fig, ax = plt.subplots(figsize=(4.6, 3.4))
    ax.hist(rewards or [0.0], bins=20, color="#2e86c1", alpha=0.85 if rewards else 0.0)
    ax.set_xlabel("reward")
    ax.set_ylabel("samples")
    ax.set_title(f"Reward histogram ({len(rewards)} samples)")
    plots["histogram"] = figure_svg(fig)

    fig, ax = plt.subplots(figsize=(4.6, 3.4))
    # Rows pile up on the same few points (all 0, all 1): one marker per point, sized and
    # labelled by how many rows sit there.
    points = Counter((round(r["mean"], 6), round(r["std"], 6)) for r in scored)
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    colours = ["#c0392b" if p[1] == 0 else "#2e86c1" for p in points]
    ax.scatter(xs, ys, s=[16 + 184 * c / max(points.values()) for c in points.values()], c=colours, alpha=0.7)
    for (x, y), count in points.items():
        if count > 1:
            ax.annotate(str(count), (x, y), textcoords="offset points", xytext=(6, 6), fontsize=8)
    ax.set_xlabel("row mean reward")
    ax.set_ylabel("row reward SD")
    ax.set_title("Per row: mean vs spread (red: no signal)")
    plots["rows"] = figure_svg(fig)

    ks = [int(k) for k, v in report["pass_at_k"].items() if v is not None]
    fig, ax = plt.subplots(figsize=(4.6, 3.4))
    ax.plot(ks, [report["pass_at_k"][str(k)] for k in ks], "o-", color="#27ae60")
    ax.set_ylim(0, 1.02)
    ax.set_xticks(ks)
    ax.set_xlabel("k")
    ax.set_ylabel("pass@k")
    ax.set_title(f"pass@k (reward >= {report['pass_threshold']:g})")
    plots["pass_at_k"] = figure_svg(fig)
    return plots


_CSS = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;color:#222}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;text-align:left;font-size:14px}
.grid{display:flex;flex-wrap:wrap;gap:12px}.grid figure{margin:0}code{background:#f4f4f4;padding:1px 4px}
pre{white-space:pre-wrap;background:#f8f8f8;padding:6px;font-size:12px;max-width:640px}"""


def _prompt_preview(row: EvalRow | None) -> str:
    if row is None:
        return ""
    for turn in reversed(row.item.get("messages") or []):
        if isinstance(turn, dict) and turn.get("role") == "user":
            content = turn.get("content")
            text = content if isinstance(content, str) else json.dumps(content, ensure_ascii=False)
            return text[:300]
    return ""


def render_html(report: dict[str, Any], rows: list[EvalRow]) -> str:
    """``report.html``: the verdict, three plots, the headline table and the flat rows."""
    e = html.escape
    by_index = {r.index: r for r in rows}
    plots = _plots(report)
    figures = "".join(f"<figure id='plot-{e(k)}'>{v}</figure>" for k, v in plots.items())
    numbers = "".join(
        f"<tr><td>{e(label)}</td><td>{e(_fmt(report[key]))}</td></tr>"
        for key, label in (
            ("rows", "rows"),
            ("rows_scored", "rows scored"),
            ("mean_reward", "mean reward"),
            ("mean_row_std", "mean within-row SD"),
            ("share_all_min", "share of rows all at min"),
            ("share_all_max", "share of rows all at max"),
            ("share_zero_variance", "share of rows with no spread"),
        )
    )
    numbers += "".join(
        f"<tr><td>pass@{e(k)}</td><td>{e(_fmt(v))}</td></tr>" for k, v in report["pass_at_k"].items()
    )
    flat_rows = "".join(
        f"<tr><td>{r['row']}</td><td>{r['line']}</td><td>{r['rewards'][0]:g}</td>"
        f"<td><pre>{e(_prompt_preview(by_index.get(r['row'])))}</pre></td></tr>"
        for r in _no_signal(report)[:200]
    )
    said = verdict(report)
    verdict_html = "".join(
        f"<p>{e(line).replace('**', '')}</p>" for line in said if not line.startswith("- ")
    )
    verdict_html += (
        "<ul>" + "".join(f"<li>{e(line[2:])}</li>" for line in said if line.startswith("- ")) + "</ul>"
    )
    grader = report["grader"]
    return f"""<!doctype html><html><head><meta charset="utf-8">
<title>RFT readiness: {e(report["model"])}</title><style>{_CSS}</style></head><body>
<h1>RFT readiness: {e(report["model"])}</h1>
<p>{report["rows"]} rows &times; {report["samples_per_row"]} samples, grader
<code>{e(grader["name"] or grader["id"])}</code> ({e(grader["type"])}), pass at reward &ge;
{report["pass_threshold"]:g}.</p>
<h2>Verdict</h2><div id="verdict">{verdict_html}</div>
<div class="grid">{figures}</div>
<h2>Numbers</h2><table id="numbers">{numbers}</table>
<h2>Rows with no learning signal</h2>
<table id="no-signal"><tr><th>row</th><th>line</th><th>every sample scored</th><th>prompt (last user turn)</th></tr>
{flat_rows}</table>
</body></html>"""


def write_outputs(report: dict[str, Any], rows: list[EvalRow], out: Path) -> dict[str, Path]:
    """Write ``eval.json``, ``summary.md`` and ``report.html`` into ``out``."""
    paths = {"eval": out / "eval.json", "summary": out / "summary.md", "html": out / "report.html"}
    paths["eval"].write_text(json.dumps(report, indent=2, ensure_ascii=False, default=str) + "\n")
    paths["summary"].write_text(render_markdown(report))
    paths["html"].write_text(render_html(report, rows))
    return paths
