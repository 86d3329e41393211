"""An OpenAI RFT dataset as a trainer's dataset, with OpenAI's item carried exactly.

OpenAI's RFT rows are ``{"messages": [...], <any other fields>}``; its graders see the
whole row as ``item``. Each trainer wants its own rows: verl a ``prompt`` with
``data_source``, ``reward_model`` and ``extra_info``; TRL a ``prompt`` column;
OpenRLHF an input key and a label key. :func:`trainer_row` writes each, with the
prompt the chat template needs and the row's item as JSON text in one column
(:data:`ITEM_KEY`, or OpenRLHF's label), which rftgrade's adapters read back as the
item (:func:`exported_item`). As one text column, items of any shape survive the
trainers' Arrow datasets, whose columns must keep one type over every row (a
``reference_answer`` that is a string here and a list there would not load).

The prompt keeps each turn's role and text: text parts are joined, and the
``developer`` role is written as ``system`` (open models' chat templates have no
developer turn). A row's ``tools`` go into its system turn as the model's chat template
writes them (:mod:`rftgrade.integrations._tool_prompt`), unless told otherwise. What a
text prompt cannot carry (an image part, a tool call) is an error naming the line and
the field; the item keeps the row as it was.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rftgrade._exceptions import DataError
from rftgrade._jsonl import iter_json_lines
from rftgrade._rows import checked_tools, split_row
from rftgrade.integrations._tool_prompt import with_tools

__all__ = [
    "ITEM_KEY",
    "TRAINERS",
    "ExportSummary",
    "TrainerRow",
    "exported_item",
    "read_training_rows",
    "trainer_row",
    "write_rows",
]

TRAINERS = ("verl", "trl", "openrlhf")
ITEM_KEY = "rftgrade_item"
"""The column (verl: the ``extra_info`` key) that holds a row's item as JSON text."""

_TEXT_PARTS = ("text", "input_text", "output_text")
_ROLES = ("system", "developer", "user", "assistant")
_MESSAGE_KEYS = frozenset({"role", "content", "type"})


@dataclass
class TrainerRow:
    """One training row: the prompt's turns (role, text) and OpenAI's item."""

    line: int
    prompt: list[dict[str, str]]
    item: dict[str, Any]


@dataclass
class ExportSummary:
    developer_turns: int = 0
    samples_left_out: int = 0
    rows_with_tools: int = 0
    rows_with_response_format: int = 0
    problems: list[str] = field(default_factory=list)


def exported_item(value: Any) -> dict[str, Any] | None:
    """The item a row carries as a JSON object or its text (``None`` when it is neither)."""
    if isinstance(value, dict):
        return dict(value)
    if isinstance(value, str) and value.lstrip().startswith("{"):
        try:
            parsed = json.loads(value)
        except ValueError:
            return None
        return parsed if isinstance(parsed, dict) else None
    return None


def _text(content: Any, where: str) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = []
        for k, part in enumerate(content):
            kind = part.get("type") if isinstance(part, dict) else None
            if kind not in _TEXT_PARTS or not isinstance(part.get("text"), str):
                what = f"a part of type {kind!r}" if kind is not None else f"a {type(part).__name__}"
                raise DataError(
                    f"{where}.content[{k}] is {what}; a trainer's text prompt takes text only: drop "
                    "the part, or prepare this row by hand"
                )
            texts.append(part["text"])
        return "\n".join(texts)
    raise DataError(f"{where}.content must be text or a list of text parts, got {type(content).__name__}")


def _prompt(messages: Any, summary: ExportSummary) -> list[dict[str, str]]:
    if not isinstance(messages, list) or not messages:
        raise DataError("`messages` must be a non-empty list of {role, content} turns")
    prompt = []
    for i, message in enumerate(messages):
        where = f"messages[{i}]"
        if not isinstance(message, dict):
            raise DataError(f"{where} must be an object with `role` and `content`")
        extra = sorted(set(message) - _MESSAGE_KEYS)
        if extra:
            raise DataError(
                f"{where} has {', '.join(map(repr, extra))}; a trainer's text prompt carries a turn's "
                "role and content only: remove them, or prepare this row by hand"
            )
        role = message.get("role")
        if role not in _ROLES:
            raise DataError(f"{where}.role is {role!r}; use one of {', '.join(_ROLES)}")
        if role == "developer":
            summary.developer_turns += 1
            role = "system"
        prompt.append({"role": role, "content": _text(message.get("content"), where)})
    if prompt[-1]["role"] != "user":
        raise DataError(
            f"messages end with a {messages[-1].get('role')} turn; a training prompt ends with the "
            "user's turn (the model answers it)"
        )
    return prompt


def read_training_rows(
    path: Path, summary: ExportSummary, tool_prompt: str = "hermes"
) -> Iterator[TrainerRow]:
    """The rows of an OpenAI RFT JSONL file; a line that is not one goes to ``summary.problems``.

    A row's ``tools`` go into its prompt's system turn (``tool_prompt="hermes"``) or are
    left to the item alone (``"none"``)."""
    for number, data, broken in iter_json_lines(path):
        try:
            if broken is not None:
                raise DataError(broken)
            if isinstance(data, dict) and "messages" not in data and "item" in data:
                raise DataError(
                    'an {"item", "sample"} row (a graded sample) has no prompt: export takes OpenAI '
                    'RFT rows, {"messages": [...], <the item\'s fields>}'
                )
            if not isinstance(data, dict) or "messages" not in data:
                raise DataError('a row is an OpenAI RFT row: {"messages": [...], <the item\'s fields>}')
            item, sample = split_row(data)  # a final assistant turn or `sample` is a sample
            if sample is not None or "samples" in data:
                summary.samples_left_out += 1
                item = {k: v for k, v in item.items() if k not in ("sample", "samples")}
            prompt = _prompt(item.get("messages"), summary)
            tools = item.get("tools")
            if tools is not None and (tools := checked_tools(tools)):
                summary.rows_with_tools += 1
                if tool_prompt == "hermes":
                    prompt = with_tools(prompt, tools)
            summary.rows_with_response_format += "response_format" in item
        except DataError as exc:
            summary.problems.append(f"line {number}: {exc}")
            continue
        yield TrainerRow(number, prompt, item)


def _item_text(item: dict[str, Any]) -> str:
    return json.dumps(item, ensure_ascii=False, separators=(",", ":"))


def _ground_truth(item: dict[str, Any]) -> str:
    answer = item.get("reference_answer", "")
    return answer if isinstance(answer, str) else json.dumps(answer, ensure_ascii=False)


def trainer_row(row: TrainerRow, trainer: str, index: int, data_source: str) -> dict[str, Any]:
    """``row`` as one row of ``trainer``'s dataset (one of :data:`TRAINERS`)."""
    if trainer == "verl":
        # verl hands the reward function reward_model.ground_truth and extra_info;
        # rftgrade's verl adapter takes the item from extra_info[ITEM_KEY].
        return {
            "data_source": data_source,
            "prompt": row.prompt,
            "ability": "rft",
            "reward_model": {"style": "rule", "ground_truth": _ground_truth(row.item)},
            "extra_info": {"index": index, ITEM_KEY: _item_text(row.item)},
        }
    if trainer == "trl":
        return {"prompt": row.prompt, ITEM_KEY: _item_text(row.item)}
    if trainer == "openrlhf":
        # --data.input_key messages --apply_chat_template --data.label_key item
        return {"messages": row.prompt, "item": _item_text(row.item)}
    raise ValueError(f"unknown trainer {trainer!r}; choose one of: {', '.join(TRAINERS)}")


def write_rows(rows: Iterable[dict[str, Any]], path: Path, batch: int = 4096) -> int:
    """Write ``rows`` as JSON lines, or as parquet for a ``.parquet`` path (needs pyarrow);
    the number written. A batch at a time (memory stays flat on a file of any size), to a
    temporary file that replaces ``path`` only once every row is written.

    Raises:
        DataError: parquet was asked for and pyarrow is not installed.
    """
    parquet = path.suffix == ".parquet"
    if parquet:
        try:
            import pyarrow as pa
            import pyarrow.parquet as pq
        except ImportError:
            raise DataError(
                "writing parquet needs pyarrow: pip install 'rftgrade[parquet]' (a trainer's "
                "environment has it), or write .jsonl, which verl 0.9+, TRL and OpenRLHF read too"
            ) from None
    partial = path.with_name(f".{path.name}.partial")
    written = 0
    try:
        if parquet:
            writer = None
            try:
                for chunk in _batches(rows, batch):
                    table = pa.Table.from_pylist(chunk)
                    if writer is None:
                        writer = pq.ParquetWriter(partial, table.schema)
                    writer.write_table(table.cast(writer.schema))
                    written += len(chunk)
            finally:
                if writer is not None:
                    writer.close()
        else:
            with partial.open("w", encoding="utf-8") as out:
                for row in rows:
                    out.write(json.dumps(row, ensure_ascii=False) + "\n")
                    written += 1
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    return written


def _batches(rows: Iterable[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    chunk: list[dict[str, Any]] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
