"""string_check: eq / ne / like / ilike, exactly OpenAI's semantics."""

from __future__ import annotations

import pytest

from rftgrade import Grader

from .conftest import string_check

CASES = [
    ("eq", "Paris", "Paris", 1.0),
    ("eq", "paris", "Paris", 0.0),
    ("eq", "Paris ", "Paris", 0.0),
    ("ne", "Paris", "Paris", 0.0),
    ("ne", "paris", "Paris", 1.0),
    ("like", "The capital is Paris.", "Paris", 1.0),
    ("like", "The capital is paris.", "Paris", 0.0),
    ("like", "anything", "", 1.0),
    ("like", "a%c", "%", 1.0),  # a plain substring test, not SQL LIKE
    ("like", "abc", "a%", 0.0),
    ("ilike", "The capital is PARIS.", "paris", 1.0),
    ("ilike", "STRASSE", "straße", 1.0),
    ("ilike", "Lyon", "paris", 0.0),
]


@pytest.mark.parametrize(("op", "text", "ref", "expected"), CASES)
def test_operations(op: str, text: str, ref: str, expected: float) -> None:
    result = Grader(string_check(op)).run(text, {"answer": ref})
    assert result.reward == expected
    assert result.ok


def test_batch_keeps_order_and_isolates_bad_rows() -> None:
    grader = Grader(string_check())
    rows = [
        {"sample": "a", "item": {"answer": "a"}},
        {"sample": 12, "item": {"answer": "a"}},
        {"item": {"answer": "a"}},
        {"sample": "b", "item": ["not", "a", "dict"]},
        ("b", {"answer": "b"}),
        {"sample": "c", "item": {}},
    ]
    results = grader.run_batch(rows)
    assert [r.reward for r in results] == [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
    assert [r.errors.raised() for r in results] == [
        [],
        ["sample_parse_error"],
        ["sample_parse_error"],
        ["sample_parse_error"],
        [],
        ["invalid_variable_error"],
    ]


async def test_async_api_matches_sync() -> None:
    grader = Grader(string_check("ilike"))
    rows = [("Yes", {"answer": "yes"}), ("no", {"answer": "yes"})]
    sync = [r.reward for r in grader.run_batch(rows)]
    assert [r.reward for r in await grader.arun_batch(rows)] == sync
    assert (await grader.arun("YES", {"answer": "yes"})).reward == 1.0
