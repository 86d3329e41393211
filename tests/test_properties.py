"""rftgrade.testing's property checks on every example grader (model graders: tests/judge)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rftgrade import Grader
from rftgrade.sandbox import Limits, SandboxExecutor
from rftgrade.sandbox._select import backend_class
from rftgrade.testing import (
    check_deterministic,
    check_monotonic,
    check_no_crash,
    check_reward_in_range,
    items,
    samples,
)

from .conftest import EXAMPLES, require_or_skip

FOLDERS = sorted(p.parent for p in EXAMPLES.glob("*/grader.json") if '_model"' not in p.read_text())
SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))


@pytest.fixture(scope="module", params=FOLDERS, ids=lambda p: p.name)
def example(request: pytest.FixtureRequest) -> Iterator[tuple[Grader, list[dict[str, Any]]]]:
    folder: Path = request.param
    python = None
    if '"python"' in (folder / "grader.json").read_text():
        require_or_skip(backend_class("bwrap").unavailable_reason() is None, "the bwrap sandbox")
        python = SandboxExecutor("bwrap", workers=2, limits=Limits(timeout=10))
    grader = Grader(folder / "grader.json", python=python)
    yield grader, _rows(folder)
    grader.close()


def real_items(rows: list[dict[str, Any]]) -> st.SearchStrategy[dict[str, Any]]:
    return items(fixed=st.sampled_from([r["item"] for r in rows]))


def test_in_range_and_never_crashing_on_adversarial_input(
    example: tuple[Grader, list[dict[str, Any]]],
) -> None:
    grader, rows = example

    @SETTINGS
    @given(samples(), real_items(rows))
    def prop(sample: Any, item: dict[str, Any]) -> None:
        check_reward_in_range(grader, sample, item)
        check_no_crash(grader, sample, item)

    prop()


def test_deterministic_on_repeat(example: tuple[Grader, list[dict[str, Any]]]) -> None:
    grader, rows = example
    for row in rows:
        check_deterministic(grader, row["sample"], row["item"], repeats=3)


def _ladders(rows: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """The dataset's own samples for one item, best-scored first by the expected rewards."""
    by_item: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        if "expected_reward" in row:
            by_item.setdefault(json.dumps(row["item"], sort_keys=True), []).append(row)
    return [sorted(v, key=lambda r: -r["expected_reward"]) for v in by_item.values() if len(v) > 1]


def _rows(folder: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in (folder / "data.jsonl").read_text().splitlines() if x.strip()]


# Only the examples whose data holds a ladder: the others have nothing to order (not a skip).
LADDER_FOLDERS = [folder for folder in FOLDERS if _ladders(_rows(folder))]


def test_some_examples_hold_quality_ladders() -> None:
    assert len(LADDER_FOLDERS) >= 3, LADDER_FOLDERS


@pytest.mark.parametrize("example", LADDER_FOLDERS, indirect=True, ids=lambda p: p.name)
def test_monotonic_on_a_quality_ladder(example: tuple[Grader, list[dict[str, Any]]]) -> None:
    grader, rows = example
    for ladder in _ladders(rows):
        check_monotonic(grader, [r["sample"] for r in ladder], ladder[0]["item"])


def test_pytest_plugin_fixture(load_grader: Any) -> None:
    grader = load_grader(EXAMPLES / "math_answer" / "grader.json")
    assert (
        grader.run('{"reasoning": "36", "answer": "31"}', {"answer": "31", "key_quantity": "36"}).reward
        == 1.0
    )
