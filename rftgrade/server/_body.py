"""Reading ``POST /v1/grade`` bodies so that the rows' items stay JSON text.

A 8,192-row batch is mostly items, and a python grader never reads an item on
the host: it forwards it to a sandbox worker. msgspec parses the body's shape
and leaves each item as a slice of the body (:class:`msgspec.Raw`), which the
server wraps as a :class:`~rftgrade._rawitem.RawItem`. A body of another shape
returns ``None`` here and is parsed in full, so its errors read as before.
"""

from __future__ import annotations

from typing import Any

import msgspec

from rftgrade._json import loads
from rftgrade._rawitem import RawItem

__all__ = ["parse_grade_body"]

_OPEN_BRACE = ord("{")


class _Row(msgspec.Struct):
    sample: Any = msgspec.UNSET
    item: msgspec.Raw = msgspec.Raw(b"null")


class _Body(msgspec.Struct):
    # Only `rows` is given a type here; the request model checks every other field
    # (and says what is wrong with it).
    rows: list[_Row]
    grader: Any = None
    stream: Any = False
    compact: Any = False


_decode = msgspec.json.Decoder(_Body).decode


def parse_grade_body(data: bytes) -> dict[str, Any] | None:
    """The body with each row's object item as a :class:`RawItem`, or ``None`` when the
    body is not of that shape (rows that are not objects, invalid JSON, ...)."""
    try:
        body = _decode(data)
    except msgspec.DecodeError:
        return None
    rows: list[dict[str, Any]] = []
    append = rows.append
    unset = msgspec.UNSET
    for row in body.rows:
        raw = row.item
        # msgspec has checked the JSON; an object's text starts with its brace.
        item = RawItem(raw) if memoryview(raw)[0] == _OPEN_BRACE else loads(bytes(raw))
        if row.sample is unset:
            append({"item": item})
        else:
            append({"sample": row.sample, "item": item})
    return {"grader": body.grader, "rows": rows, "stream": body.stream, "compact": body.compact}
