"""Identical rows are graded once: the server's dedupe, checked against a plain canonical key."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from rftgrade.server import dedupe_rows

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
