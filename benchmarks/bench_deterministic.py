"""Rows/second of string_check and every lexical text_similarity metric, against the
same library called directly in a loop, measured side by side in one run.

Run: ``python -m benchmarks.bench_deterministic [--rows N]``; writes
``benchmarks/results/deterministic.{json,md}``.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

from benchmarks._common import best_of, sentences, write
from rftgrade import Grader
from rftgrade._metrics import LEXICAL_METRICS, get_metric


def _direct(metric: str) -> Callable[[str, str], float]:
    """The library call a user would write by hand (fresh import, no rftgrade)."""
    if metric == "fuzzy_match":
        from rapidfuzz import fuzz, utils

        return lambda h, r: fuzz.WRatio(h, r, processor=utils.default_process) / 100
    if metric == "bleu":
        from sacrebleu.metrics.bleu import BLEU

        bleu = BLEU(effective_order=True)
        return lambda h, r: bleu.sentence_score(h, [r]).score / 100
    if metric == "gleu":
        from nltk.translate.gleu_score import sentence_gleu

        return lambda h, r: sentence_gleu([r.split()], h.split())
    if metric == "meteor":
        from nltk.translate.meteor_score import meteor_score

        from rftgrade._wordnet import load_wordnet

        wn = load_wordnet()
        return lambda h, r: meteor_score([r.split()], h.split(), wordnet=wn)
    from rouge_score import rouge_scorer

    kind = "rougeL" if metric == "rouge_l" else "rouge" + metric[-1]
    scorer = rouge_scorer.RougeScorer([kind], use_stemmer=False)
    return lambda h, r: scorer.score(r, h)[kind].fmeasure


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--words", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    pairs = sentences(args.rows, args.words)
    rows = [{"sample": h, "item": {"reference": r}} for h, r in pairs]
    cases: list[tuple[str, dict[str, str], Callable[[str, str], float]]] = [
        ("string_check:eq", {"type": "string_check", "operation": "eq"}, lambda h, r: float(h == r)),
        (
            "string_check:ilike",
            {"type": "string_check", "operation": "ilike"},
            lambda h, r: float(r.casefold() in h.casefold()),
        ),
    ]
    for metric in LEXICAL_METRICS:
        get_metric(metric)  # warm imports outside the timed region, for both sides
        cases.append(
            (
                f"text_similarity:{metric}",
                {"type": "text_similarity", "evaluation_metric": metric},
                _direct(metric),
            )
        )

    table = []
    for label, fields, direct in cases:
        spec = {
            "name": label,
            "input": "{{ sample.output_text }}",
            "reference": "{{ item.reference }}",
            **fields,
        }
        grader = Grader(spec)
        n = args.rows if "meteor" not in label else max(args.rows // 4, 200)
        sub_rows, sub_pairs = rows[:n], pairs[:n]
        t_direct = best_of(args.repeats, lambda: [direct(h, r) for h, r in sub_pairs])  # noqa: B023
        t_grader = best_of(args.repeats, lambda: grader.run_batch(sub_rows))  # noqa: B023
        table.append(
            {
                "case": label,
                "rows": n,
                "direct_rows_per_s": n / t_direct,
                "rftgrade_rows_per_s": n / t_grader,
                "direct_us_per_row": 1e6 * t_direct / n,
                "overhead_us_per_row": 1e6 * (t_grader - t_direct) / n,
                "overhead_ratio": t_grader / t_direct - 1,
            }
        )
        print(
            f"{label:32s} direct {n / t_direct:10.0f}/s  rftgrade {n / t_grader:10.0f}/s  "
            f"overhead {100 * (t_grader / t_direct - 1):6.1f}%  ({1e6 * (t_grader - t_direct) / n:.1f} us/row)"
        )

    lines = [
        f"# Deterministic graders: rftgrade vs the library in a loop ({args.rows} rows, {args.words}-word texts)",
        "",
        "| case | direct rows/s | rftgrade rows/s | overhead | overhead µs/row |",
        "|---|---:|---:|---:|---:|",
    ]
    for r in table:
        lines.append(
            f"| {r['case']} | {r['direct_rows_per_s']:,.0f} | {r['rftgrade_rows_per_s']:,.0f} | "
            f"{100 * r['overhead_ratio']:.1f}% | {r['overhead_us_per_row']:.1f} |"
        )
    path = write("deterministic", {"args": vars(args), "results": table}, "\n".join(lines) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
