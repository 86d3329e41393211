"""calculate_output: a real parser, no eval, bounded."""

from __future__ import annotations

import math

import pytest

from rftgrade import Grader
from rftgrade._formula import FormulaError, FormulaRuntimeError, parse_formula

from .conftest import string_check

KEYS = {"a", "b", "expected_score", "actual_score"}
ENV = {"a": 0.5, "b": 2.0, "expected_score": 70.0, "actual_score": 55.0}


@pytest.mark.parametrize(
    ("formula", "expected"),
    [
        ("(a + b) / 2", 1.25),
        ("0.5 * a + 0.5 * b", 1.25),
        ("a + b ^ 2", 4.5),
        ("2 ^ 3 ^ 2", 512.0),
        ("-b ^ 2", -4.0),
        ("(100 - abs(expected_score - actual_score)) / 100", 0.85),
        ("min(a, b, 1)", 0.5),
        ("max(a, b)", 2.0),
        ("floor(b + a)", 2.0),
        ("ceil(a)", 1.0),
        ("exp(0)", 1.0),
        ("sqrt(b * 8)", 4.0),
        ("log(b)", math.log(2.0)),
        ("log(8, 2)", 3.0),
        ("1e-3 * 1000", 1.0),
        ("+a", 0.5),
    ],
)
def test_evaluates(formula: str, expected: float) -> None:
    assert parse_formula(formula, KEYS).evaluate(ENV) == pytest.approx(expected)


@pytest.mark.parametrize(
    "formula",
    [
        "__import__('os')",
        "__import__('os').system('true')",
        "a.__class__",
        "a.real",
        "[a][0]",
        "'a'",
        "a if b else 1",
        "a < b",
        "lambda: 1",
        "open('x')",
        "min(a, key=b)",
        "min(*a)",
        "a ** 2",
        "a // b",
        "a % b",
        "c + 1",
        "min",
        "True + a",
        "",
        "(a + b",
        "a +",
        "1e999",
        "(" * 5000 + "a" + ")" * 5000,
        "abs(" * 100 + "a" + ")" * 100,
        "-" * 5000 + "a",
        "a+" * 6000 + "a",
    ],
)
def test_rejected(formula: str) -> None:
    with pytest.raises(FormulaError):
        parse_formula(formula, KEYS)


@pytest.mark.parametrize(
    "formula",
    [
        "a / 0",
        "a / (b - 2)",
        "10 ^ 10000",
        "9 ^ 9 ^ 9 ^ 9",
        "sqrt(0 - 1)",
        "log(0)",
        "(0 - 8) ^ 0.5",
        "exp(1000)",
    ],
)
def test_runtime_errors_are_bounded(formula: str) -> None:
    with pytest.raises(FormulaRuntimeError):
        parse_formula(formula, KEYS).evaluate(ENV)


def test_division_by_zero_at_run_time_flags_and_scores_zero() -> None:
    grader = Grader(
        {"type": "multi", "name": "m", "calculate_output": "1 / a", "graders": {"a": string_check()}}
    )
    good, bad = grader.run_batch([("x", {"answer": "x"}), ("y", {"answer": "x"})])
    assert good.reward == 1.0 and good.ok
    assert bad.reward == 0.0 and bad.errors.other_error
    assert "division by zero" in bad.error_messages[0]


def test_bad_formula_is_found_at_validation() -> None:
    import rftgrade

    report = rftgrade.validate(
        {
            "type": "multi",
            "name": "m",
            "calculate_output": "a + __import__('os')",
            "graders": {"a": string_check()},
        }
    )
    assert [p.kind for p in report.problems] == ["formula"]
    assert report.problems[0].path == "calculate_output"


def test_moderate_nesting_is_fine() -> None:
    assert parse_formula("(" * 50 + "a" + ")" * 50, KEYS).evaluate(ENV) == 0.5
