"""Writing calibration reports: ``report.json``, ``summary.md`` and a self-contained ``report.html``.

The HTML page embeds its plots as inline SVG (matplotlib) and its styles inline: it
opens in a browser with no network.
"""

from __future__ import annotations

import html
import json
import math
from pathlib import Path
from typing import Any

from rftgrade._svg import figure_svg

__all__ = ["render_html", "render_markdown", "write_report"]


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _ci(report: dict[str, Any], key: str) -> str:
    agreement = report.get("agreement", {})
    value, ci = agreement.get(key), agreement.get(f"{key}_ci") or [None, None]
    if value is None:
        return "n/a"
    return f"{value:.3f} [{_fmt(ci[0])}, {_fmt(ci[1])}]"


HEADLINE = [
    ("pearson", "Pearson r"),
    ("spearman", "Spearman rho"),
    ("kendall_tau_b", "Kendall tau-b"),
    ("cohen_kappa_quadratic", "Cohen kappa (quadratic)"),
    ("krippendorff_alpha", "Krippendorff alpha"),
    ("accuracy", "Accuracy (rounded)"),
    ("mae", "MAE"),
    ("mean_signed_error", "Mean signed error"),
    ("pass_agreement", "Pass/fail agreement"),
    ("roc_auc", "ROC-AUC"),
]


def render_markdown(report: dict[str, Any]) -> str:
    p = report["provenance"]
    lines = [
        f"# Calibration: {p['grader_name'] or p['grader_id']} ({p['grader_type']})",
        "",
        f"{p['items']} items x {p['repeats']} repeats; models {', '.join(p['models']) or '-'}; prompt {p['prompt_hash']}; "
        f"grader {p['grader_id']}; seed {p['seed']}; threshold {p['threshold']:g}; "
        f"{_fmt(p['seconds_per_1000_samples'], 1)} s and {int(p['tokens_per_1000_samples'].get('total_tokens', 0)):,} "
        "tokens per 1,000 samples.",
        "",
        "## Agreement with humans (95% bootstrap CI)",
        "",
        "| metric | value |",
        "|---|---|",
    ]
    for key, label in HEADLINE:
        lines.append(f"| {label} | {_ci(report, key)} |")
    a = report.get("agreement", {})
    lines.append(f"| Leniency | {a.get('leniency', 'n/a')} |")
    c, s, f = report["calibration"], report["stability"], report["failures"]
    lines += [
        "",
        "## Calibration, stability, failures",
        "",
        f"- ECE {_fmt(c.get('ece'))}, Brier {_fmt(c.get('brier'))} (P(pass) from {c.get('source')})",
        f"- flip rate {_fmt(s.get('flip_rate'))}, per-item SD median {_fmt(s.get('per_item_sd_median'))} / p90 "
        f"{_fmt(s.get('per_item_sd_p90'))}, SD of the mean reward across repeats {_fmt(s.get('mean_reward_sd_across_repeats'))}",
        f"- failed calls {f['failed_calls']}/{f['calls']} ({', '.join(f'{k}: {v}' for k, v in f['by_flag'].items()) or 'none'}); "
        f"MAE with failures as worst {_fmt(f['bounds']['failures_as_worst']['mae'])}, as best "
        f"{_fmt(f['bounds']['failures_as_best']['mae'])}",
    ]
    if report.get("probes"):
        lines += [
            "",
            "## Cheap-answer probes",
            "",
            "| probe | expected | mean score | max-score rate | flagged |",
            "|---|---|---:|---:|---|",
        ]
        for name, probe in report["probes"].items():
            lines.append(
                f"| {name} | {probe['expect']} | {probe['mean_score']:.3f} | {probe['max_score_rate']:.2f} | "
                f"{'**YES**' if probe['flagged'] else 'no'} |"
            )
    if "gate_failures" in report:
        lines += ["", "## Gates", ""]
        lines += [f"- FAILED: {why}" for why in report["gate_failures"]] or ["- all gates passed"]
    lines += ["", "## Worst disagreements", ""]
    for d in report["worst_disagreements"][:5]:
        lines.append(
            f"- item {d['index']}: human {d['human']:g}, judge {_fmt(d['judge_mean'])}: {d['sample'][:160]!r}"
        )
    return "\n".join(lines) + "\n"


def _plots(report: dict[str, Any]) -> dict[str, str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    plots: dict[str, str] = {}
    items = report["per_item"]
    human = np.array([i["human"] for i in items])
    judge = np.array(
        [
            np.nanmean([x for x in i["judge_runs"] if x is not None])
            if any(x is not None for x in i["judge_runs"])
            else np.nan
            for i in items
        ]
    )
    rng = np.random.default_rng(0)
    fig, ax = plt.subplots(figsize=(4.6, 3.6))
    ax.scatter(human + rng.uniform(-0.03, 0.03, len(human)) * (np.ptp(human) or 1), judge, s=14, alpha=0.7)
    lo, hi = report["provenance"]["range"]
    ax.plot([lo, hi], [lo, hi], "--", color="grey", lw=1)
    ax.set_xlabel("human label")
    ax.set_ylabel("judge (mean of repeats)")
    ax.set_title("Judge vs human")
    plots["scatter"] = figure_svg(fig)

    rel = report["calibration"].get("reliability", [])
    fig, ax = plt.subplots(figsize=(4.6, 3.6))
    ax.plot([0, 1], [0, 1], "--", color="grey", lw=1)
    ax.plot([r["mean_predicted"] for r in rel], [r["observed_pass_rate"] for r in rel], "o-")
    for r in rel:
        ax.annotate(str(r["count"]), (r["mean_predicted"], r["observed_pass_rate"]), fontsize=7)
    ax.set_xlabel("judge P(pass)")
    ax.set_ylabel("human pass rate")
    ax.set_title(f"Reliability (ECE {_fmt(report['calibration'].get('ece'))})")
    plots["reliability"] = figure_svg(fig)

    matrix = report.get("agreement", {}).get("confusion_matrix")
    if matrix:
        labels = [f"{v:g}" for v in report["agreement"]["labels"]]
        fig, ax = plt.subplots(figsize=(4.2, 3.6))
        ax.imshow(np.array(matrix), cmap="Blues")
        ax.set_xticks(range(len(labels)), labels)
        ax.set_yticks(range(len(labels)), labels)
        for (r, c), v in np.ndenumerate(np.array(matrix)):
            ax.text(c, r, str(v), ha="center", va="center", fontsize=8)
        ax.set_xlabel("judge (rounded)")
        ax.set_ylabel("human")
        ax.set_title("Confusion matrix")
        plots["confusion"] = figure_svg(fig)

    sweep = report.get("agreement", {}).get("threshold_sweep", [])
    if sweep:
        fig, ax = plt.subplots(figsize=(4.6, 3.6))
        t = [s["threshold"] for s in sweep]
        ax.plot(t, [s["pass_agreement"] for s in sweep], "o-", label="pass/fail agreement")
        ax.plot(t, [s["judge_pass_rate"] for s in sweep], "s--", label="judge pass rate")
        ax.plot(t, [s["human_pass_rate"] for s in sweep], "^--", label="human pass rate")
        ax.set_xlabel("threshold")
        ax.legend(fontsize=7)
        ax.set_title("Threshold sensitivity")
        plots["threshold"] = figure_svg(fig)

    probes = report.get("probes") or {}
    if probes:
        names = list(probes)
        fig, ax = plt.subplots(figsize=(7, 3.4))
        colours = ["#c0392b" if probes[n]["flagged"] else "#2e86c1" for n in names]
        ax.bar(range(len(names)), [probes[n]["mean_score"] for n in names], color=colours)
        ax.set_xticks(range(len(names)), names, rotation=35, ha="right", fontsize=8)
        ax.set_ylabel("mean score")
        ax.set_title("Cheap-answer probes (red: flagged)")
        plots["probes"] = figure_svg(fig)
    return plots


_CSS = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;color:#222}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;text-align:left;font-size:14px}
.flag{color:#c0392b;font-weight:bold}.grid{display:flex;flex-wrap:wrap;gap:12px}.grid figure{margin:0}
code{background:#f4f4f4;padding:1px 4px}pre{white-space:pre-wrap;background:#f8f8f8;padding:6px;font-size:12px}"""


def render_html(report: dict[str, Any]) -> str:
    e = html.escape
    p = report["provenance"]
    plots = _plots(report)
    rows = "".join(f"<tr><td>{e(label)}</td><td>{e(_ci(report, key))}</td></tr>" for key, label in HEADLINE)
    prov = "".join(
        f"<tr><td>{e(k)}</td><td><code>{e(json.dumps(v) if not isinstance(v, str) else v)}</code></td></tr>"
        for k, v in p.items()
    )
    probe_rows = "".join(
        f"<tr><td>{e(n)}</td><td>{e(v['description'])}</td><td>{e(v['expect'])}</td><td>{v['mean_score']:.3f}</td>"
        f"<td>{v['max_score_rate']:.2f}</td><td class='{'flag' if v['flagged'] else ''}'>{'flagged' if v['flagged'] else 'ok'}</td></tr>"
        for n, v in (report.get("probes") or {}).items()
    )
    worst = "".join(
        f"<tr><td>{d['index']}</td><td><pre>{e(d['question'])}</pre></td><td><pre>{e(d['sample'])}</pre></td>"
        f"<td>{d['human']:g}</td><td>{e(_fmt(d['judge_mean']))}</td><td><pre>{e(d['judge_reasoning'])}</pre></td></tr>"
        for d in report["worst_disagreements"]
    )
    c, s, f = report["calibration"], report["stability"], report["failures"]
    figures = "".join(f"<figure id='plot-{e(k)}'>{v}</figure>" for k, v in plots.items())
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>Calibration report: {e(p["grader_name"])}</title>
<style>{_CSS}</style></head><body>
<h1>Calibration report: {e(p["grader_name"] or p["grader_id"])}</h1>
<p>{p["items"]} items &times; {p["repeats"]} repeats, threshold {p["threshold"]:g}, models {e(", ".join(p["models"]) or "-")}.</p>
<h2>Agreement with humans</h2><table id="agreement"><tr><th>metric</th><th>value [95% CI]</th></tr>{rows}
<tr><td>Leniency</td><td>{e(str(report.get("agreement", {}).get("leniency")))}</td></tr></table>
<div class="grid">{figures}</div>
<h2>Calibration and stability</h2><table id="stability">
<tr><td>ECE</td><td>{_fmt(c.get("ece"))}</td></tr><tr><td>Brier</td><td>{_fmt(c.get("brier"))}</td></tr>
<tr><td>P(pass) from</td><td>{e(str(c.get("source")))}</td></tr>
<tr><td>Flip rate</td><td>{_fmt(s.get("flip_rate"))}</td></tr>
<tr><td>Per-item SD (median / p90)</td><td>{_fmt(s.get("per_item_sd_median"))} / {_fmt(s.get("per_item_sd_p90"))}</td></tr>
<tr><td>SD of the mean reward across repeats</td><td>{_fmt(s.get("mean_reward_sd_across_repeats"))}</td></tr></table>
<h2>Failures</h2><table id="failures"><tr><td>failed calls</td><td>{f["failed_calls"]} / {f["calls"]}</td></tr>
<tr><td>by flag</td><td>{e(json.dumps(f["by_flag"]))}</td></tr>
<tr><td>bounds (failures as worst / best)</td><td>{e(json.dumps(f["bounds"]))}</td></tr></table>
<h2>Cheap-answer probes</h2><table id="probes"><tr><th>probe</th><th>what</th><th>expected</th><th>mean score</th>
<th>max-score rate</th><th></th></tr>{probe_rows}</table>
<h2>Worst disagreements</h2><table id="worst"><tr><th>#</th><th>question</th><th>answer</th><th>human</th><th>judge</th>
<th>judge's reasoning</th></tr>{worst}</table>
<h2>Provenance</h2><table id="provenance">{prov}</table>
</body></html>"""


def write_report(report: dict[str, Any], out: Path) -> dict[str, Path]:
    """Write the three files into ``out``; returns their paths."""
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / "report.json", "markdown": out / "summary.md", "html": out / "report.html"}
    paths["json"].write_text(json.dumps(report, indent=2, default=str) + "\n")
    paths["markdown"].write_text(render_markdown(report))
    paths["html"].write_text(render_html(report))
    return paths
