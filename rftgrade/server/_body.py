"""Reading ``POST /v1/grade`` bodies as columns whose items stay JSON text.

A 8,192-row batch is mostly items, and a python grader never reads an item on
the host: it forwards it to a sandbox worker. msgspec parses the body's shape
and leaves each item as a slice of the body (:class:`msgspec.Raw`), which the
server wraps as a :class:`~rftgrade._rawitem.RawItem`. A body of another shape
returns ``None`` here and is parsed in full, so its errors read as before; so
does a body with OpenAI RFT dataset rows (``{"messages", ..., "sample"}``: the
row is the item), which the grader splits as ``rftgrade grade`` does.
"""

from __future__ import annotations

from typing import Any

import msgspec

from rftgrade._columns import Columns
from rftgrade._rawrows import RawRow, raw_item

__all__ = ["parse_grade_body"]


class _Group(msgspec.Struct):
    samples: list[Any]
    item: msgspec.Raw = msgspec.Raw(b"null")


class _Body(msgspec.Struct):
    # Only `rows` and `groups` are given a type here; the request model checks every
    # other field (and says what is wrong with it, or with a body that has both).
    rows: list[RawRow] | None = None
    groups: list[_Group] | None = None
    grader: Any = None
    stream: Any = False
    compact: Any = False


_decode = msgspec.json.Decoder(_Body).decode


def parse_grade_body(data: bytes) -> tuple[dict[str, Any], Columns | None] | None:
    """The body, and its rows as :class:`~rftgrade.Columns` whose object items are
    :class:`RawItem`; ``None`` when the body is not of that shape (rows that are not
    objects, invalid JSON, both ``rows`` and ``groups``, ...).

    With columns, the body's ``rows`` (or ``groups``) is empty (the columns are the
    rows, a group's samples one after another); a body with a row that has no
    ``sample`` keeps its rows, so that row gets its usual flag.
    """
    try:
        body = _decode(data)
    except msgspec.DecodeError:
        return None
    fields = {"grader": body.grader, "stream": body.stream, "compact": body.compact}
    if body.groups is not None and body.rows is None:
        columns = Columns.from_groups((_item(group.item), group.samples) for group in body.groups)
        return {**fields, "groups": [], "rows": None}, columns
    if body.rows is None or body.groups is not None:
        return None
    rows = body.rows
    if b'"messages"' in data:
        unset = msgspec.UNSET
        if any(row.item is unset and row.messages is not unset for row in rows):
            return None  # RFT rows: every key is the item's, read in full
    items = [_item(row.item) for row in rows]
    samples = [row.sample for row in rows]
    if msgspec.UNSET in samples:
        unset = msgspec.UNSET
        listed = [
            {"item": item} if sample is unset else {"sample": sample, "item": item}
            for sample, item in zip(samples, items, strict=True)
        ]
        return {**fields, "rows": listed}, None
    return {**fields, "rows": []}, Columns(samples, items)


def _item(raw: msgspec.Raw | msgspec.UnsetType) -> Any:
    if raw is msgspec.UNSET:
        return None  # no `item`: the grader's {}
    return raw_item(raw)
