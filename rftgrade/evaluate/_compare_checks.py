"""The checks of ``rftgrade compare``: signs in the samples that a policy learned the grader.

Each compares the tuned model's samples (B) with the base model's (A) over the rows
both runs scored, and is flagged with what to read next; none is a verdict. The
thresholds are documented in docs/eval.md; they err towards flagging, since reading
a few rows costs less than training on a hacked grader.
"""

from __future__ import annotations

import json
import math
from collections import Counter, defaultdict
from typing import Any

from rftgrade.evaluate._data import Record

__all__ = ["EXCERPT", "graded_text", "sample_checks"]

EXCERPT = 240
"""Characters of a reply quoted in a report."""
_LENGTH_RATIO = 1.5
_LENGTH_CHARS = 50
"""Replies this many times longer (or shorter) than the base model's, and by at least
this many characters on average (a one-word answer's length is noise), are flagged."""
_TRUNCATION_RISE = 0.05
_FLAG_RISE = 0.02
_SAME_REPLY_SHARE = 0.2
_SAME_REPLY_MIN_ROWS = 3
_COLLAPSE_RISE = 0.25


def graded_text(sample: Any) -> str:
    """The text the grader read: ``output_text``, else the calls, else the sample itself."""
    if isinstance(sample, dict):
        text = sample.get("output_text")
        if isinstance(text, str):
            return text
        tools = sample.get("output_tools")
        return json.dumps(tools, sort_keys=True) if tools else ""
    return sample if isinstance(sample, str) else ""


def _finish_reason(sample: Any) -> str | None:
    choices = sample.get("choices") if isinstance(sample, dict) else None
    first = choices[0] if isinstance(choices, list) and choices else None
    reason = first.get("finish_reason") if isinstance(first, dict) else None
    return reason if isinstance(reason, str) else None


def _mean(values: list[float]) -> float | None:
    return math.fsum(values) / len(values) if values else None


def _share(count: int, total: int) -> float | None:
    return count / total if total else None


def _side_facts(records: list[Record]) -> dict[str, Any]:
    texts = [graded_text(r.sample) for r in records]
    flags: Counter[str] = Counter()
    for r in records:
        flags.update(set(r.errors))
    by_row: dict[int, list[str]] = defaultdict(list)
    for r, text in zip(records, texts, strict=True):
        by_row[r.row].append(text)
    multi = [t for t in by_row.values() if len(t) > 1]
    return {
        "samples": len(records),
        "mean_chars": _mean([float(len(t)) for t in texts]),
        "share_truncated": _share(sum(_finish_reason(r.sample) == "length" for r in records), len(records)),
        "flag_shares": {k: v / len(records) for k, v in flags.items()} if records else {},
        "share_rows_one_reply": _share(sum(len(set(t)) == 1 for t in multi), len(multi)),
    }


def _common_reply(records: list[Record], rows: int) -> dict[str, Any] | None:
    """The reply (stripped text) found in the most rows, with its rows and mean reward."""
    seen: dict[str, set[int]] = defaultdict(set)
    rewards: dict[str, list[float]] = defaultdict(list)
    for r in records:
        text = graded_text(r.sample).strip()
        if text:
            seen[text].add(r.row)
            rewards[text].append(float(r.reward or 0.0))
    if not seen:
        return None
    text = max(seen, key=lambda t: (len(seen[t]), -len(t)))
    return {
        "text": text,
        "reply": text[:EXCERPT],
        "rows": len(seen[text]),
        "share_rows": len(seen[text]) / rows if rows else 0.0,
        "mean_reward": _mean(rewards[text]),
    }


def _rows_with_reply(records: list[Record], reply: str) -> int:
    return len({r.row for r in records if graded_text(r.sample).strip() == reply})


def sample_checks(a: list[Record], b: list[Record], rows: int) -> list[dict[str, Any]]:
    """The signs of a policy that learned the grader rather than the task (see the module's text)."""
    fa, fb = _side_facts(a), _side_facts(b)
    checks: list[dict[str, Any]] = []

    ca, cb = fa["mean_chars"], fb["mean_chars"]
    ratio = cb / ca if ca and cb is not None else None
    long = (
        ratio is not None
        and (ratio >= _LENGTH_RATIO or ratio <= 1 / _LENGTH_RATIO)
        and abs(cb - ca) >= _LENGTH_CHARS
    )
    checks.append(
        {
            "check": "reply_length",
            "a": ca,
            "b": cb,
            "flagged": bool(long),
            "message": (
                f"replies are {ratio:.1f}x as long as the base model's"
                + (
                    ": read the top gains, a grader that rewards length (or brevity) can be gamed"
                    if long
                    else ""
                )
                if ratio is not None
                else "no reply text to measure"
            ),
        }
    )

    ta, tb = fa["share_truncated"] or 0.0, fb["share_truncated"] or 0.0
    checks.append(
        {
            "check": "cut_at_length_limit",
            "a": ta,
            "b": tb,
            "flagged": tb > ta + _TRUNCATION_RISE,
            "message": f"{tb:.0%} of replies hit the token limit (base {ta:.0%})"
            + ("; raise --max-tokens, or the tuned model rambles" if tb > ta + _TRUNCATION_RISE else ""),
        }
    )

    risen = {
        flag: (fa["flag_shares"].get(flag, 0.0), share)
        for flag, share in fb["flag_shares"].items()
        if share > fa["flag_shares"].get(flag, 0.0) + _FLAG_RISE
    }
    checks.append(
        {
            "check": "grader_errors",
            "a": fa["flag_shares"],
            "b": fb["flag_shares"],
            "flagged": bool(risen),
            "message": (
                "; ".join(
                    f"`{f}` on {sb:.0%} of samples (base {sa:.0%})" for f, (sa, sb) in sorted(risen.items())
                )
                if risen
                else "no grader error flag grew"
            ),
        }
    )

    common_b = _common_reply(b, rows)
    share_a = _rows_with_reply(a, common_b["text"]) / rows if common_b and rows else 0.0
    same = bool(
        common_b
        and common_b["rows"] >= _SAME_REPLY_MIN_ROWS
        and common_b["share_rows"] >= _SAME_REPLY_SHARE
        and common_b["share_rows"] >= share_a + 0.1
    )
    checks.append(
        {
            "check": "same_reply_across_rows",
            "a": share_a,
            "b": common_b["share_rows"] if common_b else 0.0,
            "flagged": same,
            "reply": common_b["reply"] if common_b else None,
            "message": (
                f"one reply is given in {common_b['rows']} of {rows} rows (mean reward "
                f"{common_b['mean_reward']:.3f}): a reply that scores on many different prompts is a "
                "likely grader hack: read it, and if it does not answer those prompts, tighten the grader "
                "and keep the reply as a test case (`rftgrade run GRADER --sample TEXT --item ROW`)"
                if same and common_b
                else "no reply repeats across many rows"
            ),
        }
    )

    oa, ob = fa["share_rows_one_reply"] or 0.0, fb["share_rows_one_reply"] or 0.0
    collapsed = ob > oa + _COLLAPSE_RISE
    checks.append(
        {
            "check": "rows_with_one_reply",
            "a": oa,
            "b": ob,
            "flagged": collapsed,
            "message": f"{ob:.0%} of rows got the same text in every sample (base {oa:.0%})"
            + (": sampling diversity fell, so these rows give the next round no signal" if collapsed else ""),
        }
    )
    return checks
