"""Checking a dataset against a grader without grading: ``rftgrade validate GRADER --data FILE``.

What a hosted RFT job would find only after it started (a template variable missing
on row 812, a field that is a string here and an object there, a prompt that is
in both the training and the validation file) is found here, with the rows named.
Findings are errors (the job would fail or learn from broken rewards) or warnings
(suspicious, worth a look).
"""

from __future__ import annotations

import difflib
import hashlib
import json
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rftgrade._exceptions import DataError
from rftgrade._jsonl import iter_json_lines
from rftgrade._reads import ItemRead, item_reads, reads
from rftgrade._rows import checked_tools, is_rft_row, split_row
from rftgrade._specs import AnyGrader

__all__ = ["MAX_FILE_BYTES", "MAX_ROW_TOKENS", "Finding", "check_dataset"]

MAX_FILE_BYTES = 512 * 1024 * 1024
"""OpenAI's limit on one fine-tuning data file (512 MB)."""
MAX_ROW_TOKENS = 65_536
"""Rows whose prompt is estimated (4 characters a token) past this are flagged: RFT models'
prompt budgets are of this order, and a row this long is almost always a data bug."""
_SHOWN_ROWS = 10
_ROLES = ("system", "developer", "user", "assistant", "tool")


@dataclass
class Finding:
    """One thing found in a dataset."""

    level: str
    """``error`` (exit 1) or ``warning``."""
    message: str
    """What is wrong and how to fix it."""
    file: str = ""
    rows: list[int] = field(default_factory=list)
    """Line numbers (1-based) of the rows concerned, the first few of them."""
    count: int = 0
    """How many rows are concerned in all."""
    path: str = ""
    """The item path concerned (``reference_answer.value``), when there is one."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def __str__(self) -> str:
        where = self.file
        if self.rows:
            more = f" and {self.count - len(self.rows)} more" if self.count > len(self.rows) else ""
            noun = "row" if self.count == 1 else "rows"
            where += f" {noun} {', '.join(map(str, self.rows))}{more}"
        return f"{where}: {self.message}" if where else self.message


_MISSING = object()


def _resolve(item: Any, path: tuple[str | int, ...]) -> tuple[Any, int]:
    """The value at ``path``, or ``_MISSING`` and how many steps resolved."""
    node = item
    for depth, step in enumerate(path):
        if isinstance(node, dict):
            if step not in node:
                return _MISSING, depth
            node = node[step]
        elif isinstance(node, list):
            index = int(step) if isinstance(step, int) or step.lstrip("-").isdigit() else None
            if index is None or not -len(node) <= index < len(node):
                return _MISSING, depth
            node = node[index]
        else:
            return _MISSING, depth
    return node, len(path)


def _dotted(path: tuple[str | int, ...]) -> str:
    out = ""
    for step in path:
        out += f"[{step}]" if isinstance(step, int) else (f".{step}" if out else step)
    return out


def _type_name(value: Any) -> str:
    return {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}.get(
        type(value), "number"
    )


class _Rows:
    """The readable rows of one file: (line, row dict, item)."""

    def __init__(self, path: Path, findings: list[Finding]) -> None:
        self.path = path
        self.rows: list[tuple[int, dict[str, Any], dict[str, Any]]] = []
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            findings.append(
                Finding(
                    "error",
                    f"file is {size / 2**20:.0f} MB; OpenAI's limit for a data file is 512 MB: split it",
                    str(path),
                )
            )
        bad: list[int] = []
        for line, data, broken in iter_json_lines(path):
            if broken or not isinstance(data, dict):
                bad.append(line)
                continue
            try:
                item, _ = split_row(data)
            except ValueError:
                bad.append(line)
                continue
            self.rows.append((line, data, item))
        if bad:
            findings.append(
                Finding(
                    "error",
                    "not a JSON object row (fix or remove the line)",
                    str(path),
                    bad[:_SHOWN_ROWS],
                    len(bad),
                )
            )


def check_dataset(spec: AnyGrader, files: list[Path]) -> list[Finding]:
    """Check each file's rows against the grader, and the files against each other.

    Args:
        spec: the grader.
        files: JSONL files (an RFT dataset, or ``{item, sample}`` rows), e.g. train then valid.
    """
    findings: list[Finding] = []
    item_paths = item_reads(spec)
    tool_read = next((r for r in reads(spec, "sample") if r.path[:1] == ("output_tools",)), None)
    prompts: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
    for path in files:
        rows = _Rows(path, findings)
        if not rows.rows:
            findings.append(Finding("error", "no readable rows", str(path)))
            continue
        findings += _missing_reads(rows, item_paths)
        findings += _message_problems(rows)
        findings += _tool_problems(rows, tool_read)
        findings += _type_changes(rows)
        findings += _sizes(rows)
        for line, data, item in rows.rows:
            key = _prompt_key(data, item)
            if key:
                prompts[key][str(path)].append(line)
    findings += _duplicates(prompts)
    return findings


def _missing_reads(rows: _Rows, reads: list[ItemRead]) -> list[Finding]:
    out = []
    for read in reads:
        missing: list[int] = []
        seen_keys: set[str] = set()
        depth_hit = 0
        for line, _, item in rows.rows:
            value, depth = _resolve(item, read.path)
            if value is _MISSING:
                missing.append(line)
                parent, _ = _resolve(item, read.path[:depth])
                if isinstance(parent, dict):
                    seen_keys.update(k for k in parent if isinstance(k, str))
                depth_hit = depth
        if not missing:
            continue
        step = read.path[depth_hit] if depth_hit < len(read.path) else read.path[-1]
        hint = ""
        close = difflib.get_close_matches(str(step), sorted(seen_keys), n=1, cutoff=0.6)
        if close:
            hint = f"; did you mean `{_dotted((*read.path[:depth_hit], close[0]))}`?"
        elif seen_keys:
            hint = f"; these rows have: {', '.join(sorted(seen_keys)[:12])}"
        what = "is missing" if read.required else "is missing (read with .get(): the grader sees None)"
        out.append(
            Finding(
                "error" if read.required else "warning",
                f"`item.{_dotted(read.path)}`, read by {read.source}, {what}{hint}",
                str(rows.path),
                missing[:_SHOWN_ROWS],
                len(missing),
                _dotted(read.path),
            )
        )
    return out


def _message_problems(rows: _Rows) -> list[Finding]:
    problems: dict[str, list[int]] = defaultdict(list)
    for line, data, item in rows.rows:
        if not is_rft_row(data):
            continue  # {item, sample} rows carry no prompt
        messages = item.get("messages")
        if not isinstance(messages, list) or not messages:
            problems["`messages` must be a non-empty list of {role, content} turns"].append(line)
            continue
        for i, turn in enumerate(messages):
            if not isinstance(turn, dict) or turn.get("role") not in _ROLES:
                problems[f"`messages[{i}]` is not a turn with a role ({', '.join(_ROLES)})"].append(line)
                break
            if "content" not in turn and not turn.get("tool_calls"):
                problems[f"`messages[{i}]` has no `content`"].append(line)
                break
        else:
            if messages[-1].get("role") != "user":
                problems[
                    "`messages` must end in a user turn (the model answers it); move or drop the trailing "
                    f"{messages[-1].get('role')} turn"
                ].append(line)
    return [
        Finding("error", message, str(rows.path), lines[:_SHOWN_ROWS], len(lines), "messages")
        for message, lines in problems.items()
    ]


def _tool_problems(rows: _Rows, tool_read: ItemRead | None) -> list[Finding]:
    """RFT rows whose ``tools`` are not tools; and, for a grader that reads the model's
    calls, rows that offer none (the model is shown no tool to call there)."""
    problems: dict[str, list[int]] = defaultdict(list)
    none_offered: list[int] = []
    for line, data, item in rows.rows:
        if not is_rft_row(data):
            continue  # {item, sample} rows: the sample is given
        tools = item.get("tools")
        if tools is None or tools == []:
            none_offered.append(line)
            continue
        try:
            checked_tools(tools)
        except DataError as exc:
            problems[str(exc)].append(line)
    found = [
        Finding("error", message, str(rows.path), lines[:_SHOWN_ROWS], len(lines), "tools")
        for message, lines in problems.items()
    ]
    if tool_read is not None and none_offered:
        found.append(
            Finding(
                "warning",
                f"the grader reads the model's tool calls ({tool_read.source}), but these rows offer no "
                "`tools`: the model is shown none to call, so it makes no call there; add the row's `tools`",
                str(rows.path),
                none_offered[:_SHOWN_ROWS],
                len(none_offered),
                "tools",
            )
        )
    return found


def _type_changes(rows: _Rows) -> list[Finding]:
    types: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
    for line, _, item in rows.rows:
        for key, value in item.items():
            if key != "messages" and value is not None:
                types[key][_type_name(value)].append(line)
    out = []
    for key, by_type in types.items():
        if len(by_type) < 2:
            continue
        common = max(by_type, key=lambda t: len(by_type[t]))
        odd = sorted(line for t, lines in by_type.items() if t != common for line in lines)
        kinds = ", ".join(f"{t} in {len(lines)} rows" for t, lines in sorted(by_type.items()))
        out.append(
            Finding(
                "warning",
                f"`item.{key}` changes type across rows ({kinds}); graders see each row as it is",
                str(rows.path),
                odd[:_SHOWN_ROWS],
                len(odd),
                key,
            )
        )
    return out


def _sizes(rows: _Rows) -> list[Finding]:
    big = []
    for line, _, item in rows.rows:
        messages = item.get("messages")
        if isinstance(messages, list):
            chars = len(json.dumps(messages, ensure_ascii=False))
            if chars / 4 > MAX_ROW_TOKENS:
                big.append(line)
    if not big:
        return []
    return [
        Finding(
            "error",
            f"prompt is over ~{MAX_ROW_TOKENS:,} tokens (estimated at 4 characters a token); shorten or drop it",
            str(rows.path),
            big[:_SHOWN_ROWS],
            len(big),
            "messages",
        )
    ]


def _prompt_key(data: dict[str, Any], item: dict[str, Any]) -> str:
    prompt = item.get("messages") if is_rft_row(data) else None
    if prompt is None:
        return ""
    text = json.dumps([prompt, item.get("tools")], sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def _duplicates(prompts: dict[str, dict[str, list[int]]]) -> list[Finding]:
    within: dict[str, list[int]] = defaultdict(list)
    across: dict[tuple[str, str], list[int]] = defaultdict(list)
    for by_file in prompts.values():
        files = list(by_file)
        for name, lines in by_file.items():
            if len(lines) > 1:
                within[name] += lines[1:]
        for a in range(len(files)):
            for b in range(a + 1, len(files)):
                across[(files[a], files[b])] += by_file[files[b]]
    out = [
        Finding(
            "warning",
            "prompt repeats an earlier row of the same file (it weighs double in training)",
            name,
            sorted(lines)[:_SHOWN_ROWS],
            len(lines),
            "messages",
        )
        for name, lines in within.items()
    ]
    out += [
        Finding(
            "error",
            f"prompt is also in {first} (train/validation leakage: validation rewards will flatter the model); "
            "remove these rows from one of the files",
            second,
            sorted(lines)[:_SHOWN_ROWS],
            len(lines),
            "messages",
        )
        for (first, second), lines in across.items()
    ]
    return out
