"""Identical rows of a batch are graded once (opt-in per call: ``run_batch(rows, dedupe=True)``).

A GRPO step often holds the same completion more than once (short answers
repeat within a group); each distinct ``(sample, item)`` pair is graded once and
its result answers every copy.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from typing import Any

import orjson

from rftgrade._columns import Columns
from rftgrade._rawitem import RawItem

__all__ = ["dedupe_columns", "dedupe_rows"]


def dedupe_columns(columns: Columns) -> tuple[Columns, list[int] | None]:
    """:func:`dedupe_rows` for a batch kept as columns, which it stays (the python
    grader's fast path); ``None`` for the mapping when no two rows are equal."""
    samples, items = columns.samples, columns.items
    try:
        counts = Counter(samples)
    except TypeError:  # a sample dict: keyed whole, row by row
        unique_rows, where = dedupe_rows(columns.rows())
        return Columns([r["sample"] for r in unique_rows], [r["item"] for r in unique_rows]), where
    if len(counts) == len(samples):
        return columns, None
    kept: list[int] = []
    where = []
    first: dict[Any, int] = {}
    item_keys: dict[int, Any] = {}  # by object: a group's rows share one item, keyed once
    for k, (sample, item) in enumerate(zip(samples, items, strict=True)):
        # Only a text seen more than once needs its item in the key.
        if counts[sample] == 1:
            key: Any = sample
        else:
            item_key = item_keys.get(id(item))
            if item_key is None:
                item_key = item_keys[id(item)] = _row_key(item)
            # The type too: True == 1, but they are different samples.
            key = ("row", type(sample), sample, item_key)
        j = first.get(key)
        if j is None:
            j = first[key] = len(kept)
            kept.append(k)
        where.append(j)
    if len(kept) == len(samples):
        return columns, None
    return Columns([samples[k] for k in kept], [items[k] for k in kept]), where


def dedupe_rows(rows: list[Any]) -> tuple[list[Any], list[int]]:
    """The distinct rows, and for each row the index of its distinct copy.

    Rows with different sample texts cannot be equal, so only rows that share a
    text are serialized and compared: model samples rarely repeat, and a
    canonical key for every row cost as much as parsing the request.
    """
    samples = [row.get("sample") for row in rows if type(row) is dict]
    if len(samples) == len(rows) and _distinct(samples):  # no two rows can be equal
        return list(rows), list(range(len(rows)))
    unique: list[Any] = []
    where: list[int] = []
    by_text: dict[str, list[int]] = {}
    by_key: dict[str | bytes, int] = {}
    keyed: set[int] = set()

    def key_of(j: int) -> None:
        if j not in keyed:
            by_key.setdefault(_row_key(unique[j]), j)
            keyed.add(j)

    for row in rows:
        text = row.get("sample") if type(row) is dict else None
        same_text = by_text.get(text) if type(text) is str else None
        if type(text) is str and same_text is None:
            by_text[text] = [len(unique)]
            where.append(len(unique))
            unique.append(row)
            continue
        for j in same_text or ():
            key_of(j)
        key = _row_key(row)
        found = by_key.get(key)
        if found is None:
            found = len(unique)
            unique.append(row)
            by_key[key] = found
            keyed.add(found)
            if same_text is not None:
                same_text.append(found)
        where.append(found)
    return unique, where


def _row_key(row: Any) -> str | bytes:
    # Batches of 25,000 rows are keyed for dedupe and answered as one document:
    # orjson does both several times faster than json.
    try:
        return orjson.dumps(row, option=orjson.OPT_SORT_KEYS, default=_raw_fragment)
    except TypeError:
        return json.dumps(row, sort_keys=True, ensure_ascii=False, default=_raw_text)


def _raw_fragment(value: Any) -> Any:
    # An item still in its JSON text is keyed by that text: identical texts are
    # identical items (two spellings of one item are merely graded twice).
    if isinstance(value, RawItem):
        return orjson.Fragment(bytes(value.data))
    raise TypeError(type(value).__name__)


def _raw_text(value: Any) -> str:
    return bytes(value.data).decode() if isinstance(value, RawItem) else str(value)


def _distinct(samples: Sequence[Any]) -> bool:
    """Whether every sample differs from every other (sample dicts: not known here)."""
    try:
        return len(set(samples)) == len(samples)
    except TypeError:  # a sample dict
        return False
