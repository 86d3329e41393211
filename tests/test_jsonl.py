"""The JSONL reader that validate, eval and export share: numbers, broken lines, a BOM."""

from __future__ import annotations

from pathlib import Path

from rftgrade._jsonl import iter_json_lines


def test_each_line_has_its_number_and_a_broken_one_its_reason(tmp_path: Path) -> None:
    path = tmp_path / "rows.jsonl"
    path.write_bytes(b'\xef\xbb\xbf{"a": 1}\n\n{"b": \n' + b'{"c": "\xff"}\n' + b"[2]\r\n")
    got = list(iter_json_lines(path))
    # The byte-order mark before line 1 is skipped; the blank line 2 is not a row.
    assert got[0] == (1, {"a": 1}, None)
    assert got[1][0] == 3 and got[1][1] is None and got[1][2].startswith("not valid JSON (")
    # A line that is not UTF-8 is a broken line, and the lines after it are still read.
    assert got[2][0] == 4 and got[2][2].startswith("not UTF-8 text (")
    assert got[3] == (5, [2], None)
