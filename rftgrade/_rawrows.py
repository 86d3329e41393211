"""Reading rows whose items stay JSON text: the parser the server and ``rftgrade grade`` share.

A big batch is mostly items, and a python grader never reads an item on the
host: it forwards it to a sandbox worker. msgspec parses a row's shape and
leaves its ``item`` as a slice of the input (:class:`msgspec.Raw`), kept as a
:class:`~rftgrade._rawitem.RawItem`; graders that do read items parse them on
first use. An OpenAI RFT dataset row (``messages`` at the top, no ``item``) is
parsed in full and split by :func:`rftgrade._rows.split_row`.
"""

from __future__ import annotations

import json
from typing import Any

import msgspec

from rftgrade._exceptions import DataError
from rftgrade._json import loads
from rftgrade._rawitem import RawItem
from rftgrade._rows import NO_SAMPLE_HINT, split_row

__all__ = ["RawRow", "parse_row_block", "parse_row_line", "raw_item"]

_OPEN_BRACE = ord("{")


class RawRow(msgspec.Struct):
    """``{"sample": ..., "item": {...}}`` with the item left as JSON text.

    ``messages`` is only looked at, never parsed here: its presence (without an
    ``item``) marks an OpenAI RFT row, which is parsed in full. Other keys are skipped.
    """

    sample: Any = msgspec.UNSET
    item: msgspec.Raw | msgspec.UnsetType = msgspec.UNSET
    messages: msgspec.Raw | msgspec.UnsetType = msgspec.UNSET


_line_decoder = msgspec.json.Decoder(RawRow)
_decode_line = _line_decoder.decode
_decode_lines = _line_decoder.decode_lines

_NOT_AN_OBJECT = (
    'a row is a JSON object: an OpenAI RFT row {"messages": [...], ..., "sample": ...} '
    'or {"item": {...}, "sample": ...}'
)


def raw_item(raw: msgspec.Raw) -> Any:
    """An item's text as a :class:`RawItem` when it is an object, else its value
    (``null``, a list, ...: the grader flags those as it flags them in any row)."""
    # msgspec has checked the JSON; an object's text starts with its brace.
    return RawItem(raw) if memoryview(raw)[0] == _OPEN_BRACE else loads(bytes(raw))


def parse_row_line(line: bytes) -> tuple[Any, Any, None] | tuple[None, None, str]:
    """``(sample, item, None)`` of one JSONL line, or ``(None, None, why)``.

    The item of an ``{item, sample}`` row is a :class:`RawItem` (or ``{}`` when the
    row has none); a row without a sample is an error that says how to add one.
    """
    try:
        row = _decode_line(line)
    except msgspec.ValidationError:
        return None, None, _NOT_AN_OBJECT
    except msgspec.DecodeError:
        # The standard library's parser reads what msgspec refuses (an escaped lone
        # surrogate in a model's output) and words the error of a broken line.
        return _parsed_in_full(line)
    if row.item is msgspec.UNSET and row.messages is not msgspec.UNSET:
        return _rft_row(line)
    if row.sample is msgspec.UNSET:
        return None, None, f"row has no sample: {NO_SAMPLE_HINT}"
    item = {} if row.item is msgspec.UNSET else raw_item(row.item)
    if item is None:
        item = {}
    elif type(item) is not RawItem:
        return None, None, f"`item` must be a JSON object, got {_json_type(item)}"
    return row.sample, item, None


def _json_type(value: Any) -> str:
    return {list: "an array", str: "a string", bool: "a boolean"}.get(type(value), "a number")


def _parsed_in_full(line: bytes) -> tuple[Any, Any, None] | tuple[None, None, str]:
    try:
        data = json.loads(line)
    except json.JSONDecodeError as exc:
        return None, None, f"not valid JSON ({exc.msg}, column {exc.colno})"
    except UnicodeDecodeError as exc:
        return None, None, f"not UTF-8 text ({exc.reason} at byte {exc.start})"
    if not isinstance(data, dict):
        return None, None, _NOT_AN_OBJECT
    return _split(data)


def _rft_row(line: bytes) -> tuple[Any, Any, None] | tuple[None, None, str]:
    return _split(loads(line))


def _split(data: dict[str, Any]) -> tuple[Any, Any, None] | tuple[None, None, str]:
    try:
        item, sample = split_row(data)
    except DataError as exc:
        return None, None, str(exc)
    if sample is None:
        return None, None, f"row has no sample: {NO_SAMPLE_HINT}"
    return sample, item, None


def parse_row_block(
    block: bytes | memoryview, first_line: int
) -> tuple[list[Any], list[Any], list[tuple[int, int, str]]]:
    """Every row of ``block`` (whole JSONL lines): ``(samples, items, bad)``, where
    ``bad`` holds ``(position among the block's rows, line number, why)`` for each
    line that is not a row; ``first_line`` is the number of the block's first line.

    The common block, ``{item, sample}`` rows only, is parsed by msgspec in one call
    (half the time of a line at a time); any other block line by line.
    """
    try:
        rows = _decode_lines(block)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return _line_by_line(block, first_line)
    unset = msgspec.UNSET
    for row in rows:
        if row.item is unset or row.sample is unset or memoryview(row.item)[0] != _OPEN_BRACE:  # type: ignore[arg-type]
            return _line_by_line(block, first_line)
    return [row.sample for row in rows], [RawItem(row.item) for row in rows], []


def _line_by_line(
    block: bytes | memoryview, first_line: int
) -> tuple[list[Any], list[Any], list[tuple[int, int, str]]]:
    block = bytes(block)  # a block with other rows than {item, sample} ones: rare, and split by line
    samples: list[Any] = []
    items: list[Any] = []
    bad: list[tuple[int, int, str]] = []
    position = 0
    for number, line in enumerate(block.split(b"\n"), start=first_line):
        if not line.strip():
            continue
        sample, item, error = parse_row_line(line)
        if error is None:
            samples.append(sample)
            items.append(item)
        else:
            bad.append((position, number, f"line {number}: {error}"))
        position += 1
    return samples, items, bad
