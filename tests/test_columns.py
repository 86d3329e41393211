"""`Columns`: a batch as two columns grades exactly like the same rows."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from rftgrade import Columns, Grader
from rftgrade._rawitem import RawItem
from rftgrade.sandbox import SandboxExecutor

from .conftest import string_check

SOURCE = "def grade(sample, item):\n    return len(sample['output_text']) / 10 + item.get('bonus', 0)\n"


def _same(a: list[Any], b: list[Any]) -> None:
    assert [r.to_dict() for r in a] == [r.to_dict() for r in b]


@pytest.fixture(scope="module")
def python_grader() -> Any:
    grader = Grader({"type": "python", "name": "len", "source": SOURCE}, python=SandboxExecutor("process"))
    yield grader
    grader.close()


def _strip_times(results: list[Any]) -> list[Any]:
    for r in results:
        r.execution_time = 0.0
    return results


def test_text_columns_take_the_python_fast_path_and_grade_like_rows(python_grader: Grader) -> None:
    samples = [f"answer {i}" * (i % 3) for i in range(50)]
    items: list[Any] = [{"bonus": i} for i in range(49)] + [RawItem(b'{"bonus": 100}')]
    assert python_grader._clean_columns(Columns(samples, items)) is not None
    by_rows = python_grader.run_batch([{"sample": s, "item": i} for s, i in zip(samples, items, strict=True)])
    by_columns = python_grader.run_batch(Columns(samples, items))
    _same(_strip_times(by_rows), _strip_times(by_columns))
    assert by_columns[-1].reward == len(samples[-1]) / 10 + 100


@pytest.mark.parametrize(
    "samples, items",
    [
        (["ok", 5, None], [{}, {}, {}]),  # not text: flagged, row by row
        (["ok", "ok"], [{}, [1]]),  # an item that is not an object
        (["ok", {"output_text": "a dict sample"}], [{}, {}]),
        (["ok", "x" * 50], [None, {}]),  # None items are {}
    ],
)
def test_other_columns_are_graded_row_by_row_with_the_same_flags(
    python_grader: Grader, samples: list[Any], items: list[Any]
) -> None:
    columns = Columns(samples, items)
    by_rows = python_grader.run_batch(columns.rows())
    by_columns = python_grader.run_batch(columns)
    _same(_strip_times(by_rows), _strip_times(by_columns))


def test_too_long_samples_are_cut_and_flagged_as_rows_are() -> None:
    grader = Grader(
        {"type": "python", "name": "len", "source": SOURCE},
        python=SandboxExecutor("process"),
        max_sample_chars=20,
    )
    try:
        columns = Columns(["short", "y" * 30], [{}, {}])
        assert grader._clean_columns(columns) is None
        long_one = grader.run_batch(columns)[1]
        assert long_one.errors.truncated_observation_error and long_one.reward == 2.0
    finally:
        grader.close()


def test_columns_for_a_deterministic_grader() -> None:
    grader = Grader(string_check("eq"))
    results = grader.run_batch(Columns(["42", "41"], [{"answer": "42"}, RawItem(b'{"answer": "42"}')]))
    assert [r.reward for r in results] == [1.0, 0.0]


def test_columns_of_different_lengths_are_refused_with_both_lengths() -> None:
    with pytest.raises(ValueError, match="samples has 2 entries and items 1"):
        Columns(["a", "b"], [{}])


def test_an_item_shared_by_many_rows_is_parsed_once(monkeypatch: pytest.MonkeyPatch) -> None:
    # A `groups` body gives all of a group's rows one RawItem: a big item must not
    # be parsed once per sample by graders that read it on the host.
    import json

    from rftgrade import _rawitem

    parsed = []

    def counting(data: bytes) -> object:
        parsed.append(len(data))
        return json.loads(data)

    monkeypatch.setattr(_rawitem, "loads", counting)
    item = RawItem(json.dumps({"answer": "a", "pad": ["x" * 100] * 100}).encode())
    grader = Grader(string_check())
    results = grader.run_batch(Columns(["a", "b"] * 250, [item] * 500))
    assert [r.reward for r in results] == [1.0, 0.0] * 250
    assert len(parsed) == 1


def test_the_library_leaves_a_host_process_collector_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    import gc

    import rftgrade
    from rftgrade._gc import set_gc_pausing

    calls: list[str] = []
    real_disable = gc.disable
    monkeypatch.setattr(gc, "disable", lambda: (calls.append("disable"), real_disable())[1])
    grader = rftgrade.Grader(string_check())
    rows = [{"sample": str(i), "item": {"answer": "1"}} for i in range(50)]
    grader.run_batch(rows)
    assert calls == [] and gc.isenabled()
    set_gc_pausing(True)  # what the server and the CLI do in their own process
    try:
        grader.run_batch(rows)
    finally:
        set_gc_pausing(False)
    assert calls == ["disable"] and gc.isenabled()


def test_a_file_graded_in_rftgrades_own_process_collects_only_what_it_made(tmp_path: Path) -> None:
    # grade_jsonl freezes what was alive before it (the imports, the caller's data)
    # when the process is rftgrade's own, so its now-and-then collections are small;
    # in a host process it leaves the collector as it is.
    import gc

    from rftgrade._gc import set_gc_pausing
    from rftgrade._gradefile import grade_jsonl

    data = tmp_path / "rows.jsonl"
    data.write_text("".join(json.dumps({"sample": "1", "item": {"answer": "1"}}) + "\n" for _ in range(20)))
    grader = Grader(string_check())
    gc.unfreeze()
    grade_jsonl(grader, data, None)
    assert gc.get_freeze_count() == 0 and gc.isenabled()
    set_gc_pausing(True)
    try:
        summary = grade_jsonl(grader, data, None)
        assert gc.get_freeze_count() > 0 and gc.isenabled()
    finally:
        set_gc_pausing(False)
        gc.unfreeze()
    assert summary.rows == 20 and list(summary.rewards) == [1.0] * 20
