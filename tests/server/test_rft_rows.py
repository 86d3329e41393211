"""``POST /v1/grade`` also takes OpenAI RFT dataset rows (the JSONL a fine-tuning job
reads): the row is the item, ``messages`` included, and its sample is ``"sample"``
or a final assistant message, as ``rftgrade grade`` reads them (issue 16)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from rftgrade._registry import GraderRegistry
from rftgrade.server import ServerConfig

from .conftest import running_server

MATCH = {
    "type": "string_check",
    "name": "match",
    "input": "{{ sample.output_text }}",
    "reference": "{{ item.reference_answer }}",
    "operation": "eq",
}
# Reads the item's `messages`: an RFT row's item is the whole row.
FIRST_TURN = {**MATCH, "name": "first", "reference": "{{ item.messages[0].content }}"}


@pytest.fixture(scope="module")
def base() -> Iterator[str]:
    with running_server(ServerConfig(), GraderRegistry(sandbox="process")) as url:
        yield url


def grade(base: str, body: dict[str, object]) -> httpx.Response:
    return httpx.post(base + "/v1/grade", json=body, timeout=30)


def question(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


def test_rft_rows_with_a_sample_are_graded_against_the_whole_row(base: str) -> None:
    rows = [
        {"messages": question("2+2?"), "reference_answer": "4", "sample": "4"},
        {"messages": question("3+3?"), "reference_answer": "6", "sample": "5"},
        {"sample": "7", "item": {"reference_answer": "7"}},  # rftgrade's own rows mix in
    ]
    response = grade(base, {"grader": MATCH, "rows": rows})
    assert response.status_code == 200, response.text
    assert [r["reward"] for r in response.json()["results"]] == [1.0, 0.0, 1.0]
    first = grade(base, {"grader": FIRST_TURN, "rows": [{"messages": question("hi"), "sample": "hi"}]})
    assert first.json()["results"][0]["reward"] == 1.0


def test_rft_rows_answered_by_a_final_assistant_turn(base: str) -> None:
    rows = [
        {"messages": [*question("2+2?"), {"role": "assistant", "content": "4"}], "reference_answer": "4"},
        {"messages": [*question("2+2?"), {"role": "assistant", "content": "5"}], "reference_answer": "4"},
    ]
    response = grade(base, {"grader": MATCH, "rows": rows, "compact": True})
    assert response.status_code == 200, response.text
    assert response.json()["rewards"] == [1.0, 0.0]
    # The item's messages stop before the answer, as in the dataset.
    turn = grade(base, {"grader": FIRST_TURN, "rows": rows[:1]})
    assert turn.json()["results"][0]["reward"] == 0.0


def test_an_rft_row_without_a_sample_flags_only_itself(base: str) -> None:
    rows = [
        {"messages": question("2+2?"), "reference_answer": "4"},
        {"messages": question("2+2?"), "reference_answer": "4", "sample": "4"},
    ]
    response = grade(base, {"grader": MATCH, "rows": rows})
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert results[1]["reward"] == 1.0
    assert results[0]["reward"] == 0.0 and "sample" in " ".join(results[0]["metadata"]["error_messages"])
