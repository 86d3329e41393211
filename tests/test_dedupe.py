"""Dedupe of repeated rows (core, opt-in per call; the server uses it for every batch)."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from rftgrade import Columns
from rftgrade._dedupe import dedupe_columns, dedupe_rows
from rftgrade._rawitem import RawItem

texts = st.sampled_from(["a", "b", '{"x": 1}'])
items = st.fixed_dictionaries({"answer": st.sampled_from([1, 2, "1"])})
rows = st.one_of(
    st.fixed_dictionaries({"sample": texts, "item": items}),
    st.fixed_dictionaries({"sample": st.fixed_dictionaries({"output_text": texts}), "item": items}),
    st.fixed_dictionaries({"sample": texts, "item": items, "extra": st.just(1)}),
    st.just({"bad": 1}),
    st.lists(texts, max_size=2),
)


def canonical(row: Any) -> str:
    return json.dumps(row, sort_keys=True)


@settings(max_examples=300, deadline=None)
@given(st.lists(rows, max_size=40))
def test_dedupe_keeps_one_copy_of_each_distinct_row(batch: list[Any]) -> None:
    unique, where = dedupe_rows(batch)
    assert [unique[j] for j in where] == batch  # every row maps to an equal row
    assert len({canonical(r) for r in unique}) == len(unique)  # and no two kept rows are equal
    assert len(unique) == len({canonical(r) for r in batch})


def plain(item: Any) -> Any:
    return item.parse() if isinstance(item, RawItem) else item


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(texts, items), max_size=40), st.booleans())
def test_dedupe_of_columns_keeps_them_columns_and_one_copy_of_each_row(
    batch: list[Any], as_text: bool
) -> None:
    # Items all as objects, or all as the JSON text a /v1/grade body leaves them in.
    column = [RawItem(json.dumps(i).encode()) if as_text else i for _, i in batch]
    columns = Columns([s for s, _ in batch], column)
    unique, where = dedupe_columns(columns)
    assert isinstance(unique, Columns)
    if where is None:  # nothing repeats: graded as they came
        assert unique is columns
        where = list(range(len(batch)))
    kept = [
        canonical({"sample": s, "item": plain(i)}) for s, i in zip(unique.samples, unique.items, strict=True)
    ]
    assert [kept[j] for j in where] == [canonical({"sample": s, "item": i}) for s, i in batch]
    assert len(set(kept)) == len(kept)


def test_a_sample_text_that_spells_another_rows_key_is_not_merged_with_it() -> None:
    text = json.dumps({"item": {}, "sample": "a"}, sort_keys=True)
    columns = Columns([text, "a", "a"], [{}, {}, {}])
    unique, where = dedupe_columns(columns)
    assert unique.samples == [text, "a"] and where == [0, 1, 1]


def test_a_shared_item_is_keyed_once_however_many_rows_repeat_their_text(monkeypatch: Any) -> None:
    # A `groups` body: one item (possibly big) for many rows; keying it once per
    # repeated sample would make the work grow with samples x item size.
    from rftgrade import _dedupe

    keyed: list[Any] = []
    real = _dedupe._row_key

    def counting(value: Any) -> Any:
        keyed.append(value)
        return real(value)

    monkeypatch.setattr(_dedupe, "_row_key", counting)
    item = RawItem(json.dumps({"pad": "x" * 10_000}).encode())
    unique, where = dedupe_columns(Columns(["same"] * 999 + ["other"], [item] * 1000))
    assert unique.samples == ["same", "other"] and where == [0] * 999 + [1]
    assert len(keyed) == 1
    # True and 1 are equal in Python, not as samples.
    unique, where = dedupe_columns(Columns([True, 1, True, 1], [{}] * 4))
    assert unique.samples == [True, 1] and where == [0, 1, 0, 1]


# A grader that counts its calls in a file: the count is what dedupe saves.
_COUNTING = """
import os
def grade(sample, item):
    with open(item["log"], "a") as fh:
        fh.write("x")
    return float(sample["output_text"] == item["answer"])
"""


def _counting_rows(log: str) -> list[dict[str, Any]]:
    answers = ["4", "5", "4", "4", "6", "5"]
    return [{"sample": a, "item": {"answer": "4", "log": log}} for a in answers]


def test_run_batch_with_dedupe_grades_each_distinct_row_once(tmp_path: Any) -> None:
    from rftgrade import Grader

    log = tmp_path / "calls"
    spec = {"type": "python", "name": "count", "source": _COUNTING}
    with Grader(spec, sandbox="process") as grader:
        plain = grader.run_batch(_counting_rows(str(log)))
        calls_plain = len(log.read_text())
        log.unlink()
        deduped = grader.run_batch(_counting_rows(str(log)), dedupe=True)
        calls_deduped = len(log.read_text())
        log.unlink()
        columns = Columns(*zip(*[(r["sample"], r["item"]) for r in _counting_rows(str(log))], strict=True))
        from_columns = grader.run_batch(columns, dedupe=True)
        calls_columns = len(log.read_text())
    assert calls_plain == 6 and calls_deduped == 3 and calls_columns == 3
    rewards = [1.0, 0.0, 1.0, 1.0, 0.0, 0.0]
    assert (
        [r.reward for r in plain]
        == [r.reward for r in deduped]
        == [r.reward for r in from_columns]
        == rewards
    )


def test_dedupe_is_off_unless_asked_and_keeps_bad_rows_flagged() -> None:
    from rftgrade import Grader

    spec = {
        "type": "string_check",
        "name": "eq",
        "input": "{{ sample.output_text }}",
        "reference": "{{ item.answer }}",
        "operation": "eq",
    }
    rows: list[Any] = [
        {"sample": "4", "item": {"answer": "4"}},
        {"item": {"answer": "4"}},
        {"sample": "4", "item": {"answer": "4"}},
    ]
    results = Grader(spec).run_batch(rows, dedupe=True)
    assert [r.reward for r in results] == [1.0, 0.0, 1.0]
    assert results[1].errors.sample_parse_error and results[0].ok and results[2].ok
