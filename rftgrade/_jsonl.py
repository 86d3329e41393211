"""Reading JSONL files line by line: each line's number and value, or why it is not JSON."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = ["iter_json_lines"]

_BOM = b"\xef\xbb\xbf"


def iter_json_lines(path: Path) -> Iterator[tuple[int, Any, str | None]]:
    """``(line number, value, None)`` per JSON line, ``(line number, None, why)`` per broken one.

    Blank lines are skipped; numbers are 1-based, as editors show them. A UTF-8
    byte-order mark at the file's start (some editors and exports write one) is
    skipped, and a line that is not UTF-8 is a broken line, not the end of the file.
    """
    with path.open("rb") as fh:
        for number, line in enumerate(fh, start=1):
            if number == 1:
                line = line.removeprefix(_BOM)
            if not line.strip():
                continue
            try:
                yield number, json.loads(line), None
            except json.JSONDecodeError as exc:
                yield number, None, f"not valid JSON ({exc.msg}, column {exc.colno})"
            except UnicodeDecodeError as exc:
                yield number, None, f"not UTF-8 text ({exc.reason} at byte {exc.start})"
