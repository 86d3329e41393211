"""An item kept as the JSON text it arrived in, parsed only when something reads it.

The reward server receives items as JSON. A python grader never reads an item on
the host: it only forwards it to a sandbox worker, which must build its own copy
anyway. Keeping the text (a zero-copy slice of the request body) spares the host
parsing it, re-encoding it for the worker, and freeing it: on a 8,192-row batch of
the chip-wiring grader that was over half of the server's own work. Graders that do
read items (templates, model graders) parse them on first use.
"""

from __future__ import annotations

from typing import Any

from rftgrade._json import loads

__all__ = ["RawItem"]


class RawItem:
    """The JSON text of one item, which must be an object (``{...}``).

    ``data`` is any bytes-like object holding valid UTF-8 JSON (the caller has
    checked it); :meth:`parse` turns it into the dict.
    """

    __slots__ = ("_value", "data")

    def __init__(self, data: Any) -> None:
        self.data = data
        self._value: dict[str, Any] | None = None

    def parse(self) -> dict[str, Any]:
        """The item as a dict, parsed on the first call and kept: every row of a
        ``groups`` batch holds the same RawItem, and a big item must not be parsed
        once per sample (graders on the host only read items)."""
        value = self._value
        if value is None:
            value = loads(bytes(self.data))
            if not isinstance(value, dict):
                raise ValueError("a raw item must be the JSON text of an object")
            self._value = value
        return value

    def __repr__(self) -> str:
        return f"RawItem({bytes(self.data)[:60]!r})"
