"""The eval's files: dataset rows in, ``samples.jsonl`` records in and out.

``samples.jsonl`` is append-only while a run goes (one line per graded sample,
flushed at once), so a crash or Ctrl-C loses nothing that was graded; the run's
end rewrites it sorted, one line per ``(row, n)``. A torn last line (the process
died mid-write) is skipped on reading, not fatal.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from rftgrade._exceptions import DataError
from rftgrade._jsonl import iter_json_lines
from rftgrade._rows import split_row

__all__ = ["DataProblem", "EvalRow", "Record", "load_records", "prompt_sha", "read_rows", "write_records"]


@dataclass
class DataProblem:
    """A dataset or samples line that could not be used: where, and why."""

    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


@dataclass
class EvalRow:
    """One dataset row: its index (0-based, over non-blank lines), line and item."""

    index: int
    line: int
    item: dict[str, Any]


def _item_of(data: dict[str, Any]) -> dict[str, Any]:
    """The item OpenAI's graders see: the RFT row itself (``messages`` included, a
    final Nova-style assistant answer left out), or an ``{"item", ...}`` row's item.

    Raises:
        DataError: ``item`` is present but not an object.
    """
    return split_row(data)[0]


def _check_messages(item: dict[str, Any]) -> str | None:
    messages = item.get("messages")
    if not isinstance(messages, list) or not messages:
        return (
            'no `messages` to prompt the model with; an RFT row is {"messages": [{"role": "user", '
            '"content": "..."}], ...other fields the grader reads}'
        )
    for i, turn in enumerate(messages):
        if not isinstance(turn, dict) or "role" not in turn:
            return f"`messages[{i}]` is not a {{role, content}} turn"
    return None


def read_rows(path: Path) -> tuple[list[EvalRow], list[DataProblem]]:
    """Every usable row of a JSONL dataset, and a problem per line that is not."""
    rows: list[EvalRow] = []
    problems: list[DataProblem] = []
    index = 0
    for number, data, broken in iter_json_lines(path):
        # Indexes count every non-blank line, readable or not, so a bad line
        # does not shift the rows after it (and resumed samples stay theirs).
        row_index, index = index, index + 1
        if broken:
            problems.append(DataProblem(number, broken))
            continue
        if not isinstance(data, dict):
            problems.append(DataProblem(number, f"a row is a JSON object, got {type(data).__name__}"))
            continue
        try:
            item = _item_of(data)
        except DataError as exc:
            problems.append(DataProblem(number, str(exc)))
            continue
        why = _check_messages(item)
        if why:
            problems.append(DataProblem(number, why))
            continue
        rows.append(EvalRow(row_index, number, item))
    return rows, problems


def prompt_sha(body: dict[str, Any]) -> str:
    """A short hash of what was sent (model excluded), to tell a reused sample's prompt."""
    canonical = json.dumps(
        {k: v for k, v in body.items() if k != "model"}, sort_keys=True, ensure_ascii=False, default=str
    )
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


@dataclass
class Record:
    """One line of ``samples.jsonl``."""

    row: int
    n: int
    sample: Any = None
    """The OpenAI sample dict (or text); ``None`` when the endpoint never gave one."""
    reward: float | None = None
    errors: list[str] = field(default_factory=list)
    """The grader's error flags; ``["not_sampled"]`` for a sample the endpoint did not give."""
    error_messages: list[str] = field(default_factory=list)
    prompt: str | None = None
    """:func:`prompt_sha` of the request, when rftgrade sampled it."""

    @property
    def sampled(self) -> bool:
        return self.sample is not None

    def to_json(self) -> str:
        data: dict[str, Any] = {
            "row": self.row,
            "n": self.n,
            "sample": self.sample,
            "reward": self.reward,
            "errors": self.errors,
        }
        if self.error_messages:
            data["error_messages"] = self.error_messages
        if self.prompt:
            data["prompt"] = self.prompt
        return json.dumps(data, ensure_ascii=False)

    def write(self, fh: TextIO) -> None:
        fh.write(self.to_json() + "\n")
        fh.flush()


def _record(data: Any, counters: dict[int, int]) -> Record | str:
    if not isinstance(data, dict):
        return "a samples line is a JSON object"
    row = data.get("row")
    if not isinstance(row, int) or isinstance(row, bool) or row < 0:
        return '`row` must be the 0-based dataset row index, e.g. {"row": 0, "n": 0, "sample": "..."}'
    n = data.get("n")
    if n is None:
        n = counters.get(row, 0)  # samples made elsewhere may leave `n` out: number them in order
    if not isinstance(n, int) or isinstance(n, bool) or n < 0:
        return "`n` must be the sample's 0-based number within its row"
    counters[row] = max(counters.get(row, 0), n + 1)
    sample = data.get("sample")
    if sample is not None and not isinstance(sample, (str, dict)):
        return "`sample` must be the model's text or an OpenAI sample dict"
    reward = data.get("reward")
    errors = data.get("errors") or []
    return Record(
        row=row,
        n=n,
        sample=sample,
        reward=float(reward) if isinstance(reward, (int, float)) and sample is not None else None,
        errors=[str(e) for e in errors] if isinstance(errors, list) else [],
        error_messages=[str(m) for m in data.get("error_messages") or []],
        prompt=data.get("prompt") if isinstance(data.get("prompt"), str) else None,
    )


def load_records(path: Path) -> tuple[dict[tuple[int, int], Record], list[DataProblem]]:
    """The records of a ``samples.jsonl``; for a repeated ``(row, n)`` a sampled line
    wins over a not-sampled one, and a later line over an earlier one."""
    records: dict[tuple[int, int], Record] = {}
    problems: list[DataProblem] = []
    counters: dict[int, int] = {}
    if not path.is_file():
        return records, problems
    for number, data, broken in iter_json_lines(path):
        if broken:
            problems.append(DataProblem(number, f"{broken}; the line is ignored"))
            continue
        record = _record(data, counters)
        if isinstance(record, str):
            problems.append(DataProblem(number, record))
            continue
        key = (record.row, record.n)
        old = records.get(key)
        if old is None or record.sampled or not old.sampled:
            records[key] = record
    return records, problems


def write_records(path: Path, records: list[Record]) -> None:
    """Rewrite ``path`` with ``records`` atomically (a crash leaves the old file)."""
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        for record in sorted(records, key=lambda r: (r.row, r.n)):
            fh.write(record.to_json() + "\n")
    os.replace(tmp, path)
