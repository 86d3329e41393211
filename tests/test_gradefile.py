"""Grading a JSONL file: order, bad lines, compact lines, raw items, bounded read-ahead."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rftgrade import Grader
from rftgrade._gradefile import grade_jsonl
from rftgrade._rawitem import RawItem

from .conftest import string_check

PY_SOURCE = "def grade(sample, item):\n    return float(sample['output_text'] == item['answer'])\n"


def _lines(rows: list[Any]) -> bytes:
    return b"".join((r if isinstance(r, bytes) else json.dumps(r).encode()) + b"\n" for r in rows)


ROWS: list[Any] = [
    {"sample": "4", "item": {"answer": "4"}},
    b"{broken",
    {"sample": "5", "item": {"answer": "4"}},
    b"",  # blank: no result line
    {"item": {"answer": "4"}},  # no sample
    {"messages": [{"role": "user", "content": "2+2?"}], "answer": "4", "sample": "4"},  # an RFT row
    {"sample": "4", "item": {"answer": "4"}},  # a repeat
    {"sample": "4", "item": [1]},  # item not an object
]


@pytest.mark.parametrize("batch_rows", [1, 3, 100])
def test_results_keep_the_input_order_and_bad_lines_are_flagged_in_place(batch_rows: int) -> None:
    sink = io.BytesIO()
    skipped: list[str] = []
    summary = grade_jsonl(
        Grader(string_check("eq")),
        io.BytesIO(_lines(ROWS)),
        sink,
        batch_rows=batch_rows,
        on_skip=skipped.append,
    )
    out = [json.loads(line) for line in sink.getvalue().splitlines()]
    assert [o["reward"] for o in out] == [1.0, 0.0, 0.0, 0.0, 1.0, 1.0, 0.0]
    parse_errors = [o["metadata"]["errors"]["sample_parse_error"] for o in out]
    assert parse_errors == [False, True, False, True, False, False, True]
    assert summary.rows == 7 and summary.unreadable == 3 and summary.errored_rows == 3
    assert [s.split(":")[0] for s in skipped] == ["line 2", "line 5", "line 8"]
    assert "must be a JSON object, got an array" in skipped[2]
    assert "row has no sample" in skipped[1]


def test_compact_lines_are_reward_and_the_flags_raised() -> None:
    sink = io.BytesIO()
    grade_jsonl(Grader(string_check("eq")), io.BytesIO(_lines(ROWS)), sink, compact=True)
    out = [json.loads(line) for line in sink.getvalue().splitlines()]
    assert out[0] == {"reward": 1.0, "errors": []}
    assert out[1] == {"reward": 0.0, "errors": ["sample_parse_error"]}
    assert all(set(o) == {"reward", "errors"} for o in out)


def test_a_python_graders_items_reach_the_sandbox_as_their_text(monkeypatch: pytest.MonkeyPatch) -> None:
    # Parsing an item on the host is what the raw path saves: make it fail loudly.
    def no_parse(self: RawItem) -> dict[str, Any]:
        raise AssertionError("an item was parsed on the host")

    monkeypatch.setattr(RawItem, "parse", no_parse)
    rows = [{"sample": str(i % 3), "item": {"answer": "1", "pad": "x" * i}} for i in range(200)]
    sink = io.BytesIO()
    with Grader({"type": "python", "name": "eq", "source": PY_SOURCE}, sandbox="process") as grader:
        summary = grade_jsonl(grader, io.BytesIO(_lines(rows)), sink, batch_rows=64)
    out = [json.loads(line) for line in sink.getvalue().splitlines()]
    assert [o["reward"] for o in out] == [float(i % 3 == 1) for i in range(200)]
    assert summary.errored_rows == 0


class _Recording(io.BytesIO):
    """A sink that notes how far the source had been read at each write."""

    def __init__(self, source: io.BytesIO) -> None:
        super().__init__()
        self.source = source
        self.read_at: list[int] = []

    def write(self, data: Any) -> int:
        self.read_at.append(self.source.tell())
        return super().write(data)


def test_only_a_few_batches_are_read_ahead_of_the_one_being_written() -> None:
    rows = [{"sample": "4", "item": {"answer": "4", "n": i}} for i in range(1000)]
    data = _lines(rows)
    block = 10 * (len(data) // 1000)  # about ten lines a block, so a batch a block
    source = io.BytesIO(data)
    sink = _Recording(source)
    summary = grade_jsonl(Grader(string_check("eq")), source, sink, in_flight=2, block_bytes=block)
    # The first batch is written once the third is read (BytesIO reads no further ahead),
    # and then one more block is read per batch written.
    assert sink.read_at[0] <= 3 * block
    assert max(b - a for a, b in zip(sink.read_at, sink.read_at[1:], strict=False)) <= block
    assert summary.rows == 1000 and len(sink.read_at) >= 90


def test_big_blocks_are_cut_into_batches_and_lines_keep_their_numbers() -> None:
    rows: list[Any] = (
        [{"sample": "4", "item": {"answer": "4"}}] * 25
        + [b"{oops"]
        + [{"sample": "5", "item": {"answer": "4"}}] * 24
    )
    sink = io.BytesIO()
    skipped: list[str] = []
    summary = grade_jsonl(
        Grader(string_check("eq")), io.BytesIO(_lines(rows)), sink, batch_rows=7, on_skip=skipped.append
    )
    rewards = [json.loads(x)["reward"] for x in sink.getvalue().splitlines()]
    assert rewards == [1.0] * 25 + [0.0] * 25 and summary.rows == 50
    assert skipped == [skipped[0]] and skipped[0].startswith("line 26: not valid JSON")


def test_a_line_longer_than_a_block_is_read_whole() -> None:
    rows = [{"sample": "4" * 5000, "item": {"answer": "4" * 5000}}, {"sample": "4", "item": {"answer": "4"}}]
    sink = io.BytesIO()
    grade_jsonl(Grader(string_check("eq")), io.BytesIO(_lines(rows)), sink, block_bytes=100)
    assert [json.loads(x)["reward"] for x in sink.getvalue().splitlines()] == [1.0, 1.0]


def test_the_cli_writes_compact_lines(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from rftgrade.cli.main import app

    grader = tmp_path / "g.json"
    grader.write_text(json.dumps(string_check("eq")))
    data = tmp_path / "d.jsonl"
    data.write_bytes(_lines(ROWS))
    out = tmp_path / "out.jsonl"
    result = CliRunner().invoke(app, ["grade", str(grader), str(data), "-o", str(out), "--compact"])
    assert result.exit_code == 0, result.output
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert [x["reward"] for x in lines] == [1.0, 0.0, 0.0, 0.0, 1.0, 1.0, 0.0]


def test_a_batch_that_fails_as_a_whole_is_flagged_and_the_file_goes_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    grader = Grader(string_check("eq"))
    real = grader.arun_batch
    calls = []

    async def sometimes(rows: Any, **kw: Any) -> Any:
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("the executor went away")
        return await real(rows, **kw)

    monkeypatch.setattr(grader, "arun_batch", sometimes)
    rows = [{"sample": "4", "item": {"answer": "4"}}] * 30
    sink = io.BytesIO()
    summary = grade_jsonl(grader, io.BytesIO(_lines(rows)), sink, batch_rows=10)
    out = [json.loads(x) for x in sink.getvalue().splitlines()]
    assert [o["reward"] for o in out] == [1.0] * 10 + [0.0] * 10 + [1.0] * 10
    assert all(o["metadata"]["errors"]["other_error"] for o in out[10:20])
    assert "the executor went away" in out[10]["metadata"]["error_messages"][0]
    assert summary.errored_rows == 10


def test_crlf_lines_and_a_byte_order_mark_are_read() -> None:
    rows = [{"sample": "4", "item": {"answer": "4"}}, {"sample": "5", "item": {"answer": "4"}}]
    data = b"\xef\xbb\xbf" + _lines(rows).replace(b"\n", b"\r\n")
    sink = io.BytesIO()
    summary = grade_jsonl(Grader(string_check("eq")), io.BytesIO(data), sink)
    assert [json.loads(x)["reward"] for x in sink.getvalue().splitlines()] == [1.0, 0.0]
    assert summary.unreadable == 0


class _ReadOnly(io.RawIOBase):
    """A stream with read() and no readinto(): blocks are cut the same way."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        return self._data.read(size)

    readinto = None  # type: ignore[assignment]


@settings(max_examples=200, deadline=None)
@given(
    lines=st.lists(
        st.one_of(st.just(b"\xef\xbb\xbf"), st.binary(max_size=40).map(lambda b: b.replace(b"\n", b""))),
        max_size=30,
    ),
    last_newline=st.booleans(),
    bom=st.booleans(),
    size=st.integers(min_value=1, max_value=64),
    read_only=st.booleans(),
)
def test_blocks_are_whole_lines_numbered_from_the_file(
    lines: list[bytes], last_newline: bool, bom: bool, size: int, read_only: bool
) -> None:
    from rftgrade._gradefile import _blocks

    text = b"\n".join(lines) + (b"\n" if last_newline and lines else b"")
    data = (b"\xef\xbb\xbf" if bom else b"") + text
    stream: Any = _ReadOnly(data) if read_only else io.BytesIO(data)
    blocks = [(bytes(block), number) for block, number in _blocks(stream, size)]
    # One byte-order mark at the start goes, whether added here or drawn as the text's start.
    assert b"".join(block for block, _ in blocks) == data.removeprefix(b"\xef\xbb\xbf")
    assert all(block.endswith(b"\n") for block, _ in blocks[:-1]) and all(block for block, _ in blocks)
    expected = 1
    for block, number in blocks:
        assert number == expected
        expected += block.count(b"\n")
