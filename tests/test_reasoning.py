"""A reasoning model's completion cut to its final answer (:mod:`rftgrade._reasoning`)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from rftgrade import final_answer
from rftgrade._reasoning import Answer, split_answer
from rftgrade.integrations._samples import SampleCounts, openai_sample

ANSWER = '{"answer": "42"}'


@pytest.mark.parametrize(
    ("completion", "expected"),
    [
        # Qwen3, QwQ: the model opens and closes its reasoning.
        (f"<think>\nSix sevens.\n</think>\n\n{ANSWER}", Answer(ANSWER, True, False)),
        # DeepSeek-R1's template opens <think> in the prompt: the completion only closes it.
        (f"Six sevens are 42.\n</think>\n\n{ANSWER}", Answer(ANSWER, True, False)),
        ("<think>\n\n</think>\n\n42", Answer("42", True, False)),  # Qwen3 with thinking off
        ("[THINK]Six sevens.[/THINK]42", Answer("42", True, False)),  # Magistral
        ("<seed:think>x</seed:think>42", Answer("42", True, False)),  # Seed-OSS
        # gpt-oss, special tokens kept (OpenRLHF) and skipped (verl).
        (
            "<|channel|>analysis<|message|>Six sevens.<|end|><|start|>assistant<|channel|>final"
            f"<|message|>{ANSWER}<|return|>",
            Answer(ANSWER, True, False),
        ),
        (f"analysisSix sevens.assistantfinal{ANSWER}", Answer(ANSWER, True, False)),
        # Cut at the length limit before any answer: there is none.
        ("<think>\nSix sevens are", Answer("", True, True)),
        ("  <think>Six", Answer("", True, True)),
        ("<|channel|>analysis<|message|>Six sevens are", Answer("", True, True)),
        # No reasoning: unchanged, whitespace and all.
        (ANSWER, Answer(ANSWER, False, False)),
        ("  42\n", Answer("  42\n", False, False)),
        ("analysis: 42", Answer("analysis: 42", False, False)),
        ("I think <think> is a tag", Answer("I think <think> is a tag", False, False)),
        ("", Answer("", False, False)),
    ],
)
def test_split_answer(completion: str, expected: Answer) -> None:
    assert split_answer(completion) == expected
    assert final_answer(completion) == expected.text


_MARKERS = ("think>", "THINK]", "<|channel|>", "assistantfinal")


@given(st.text())
def test_text_without_reasoning_markers_is_left_as_it_is(text: str) -> None:
    if not any(marker in text for marker in _MARKERS):
        assert final_answer(text) == text


@given(reasoning=st.text(), answer=st.text(), opened=st.booleans())
def test_the_answer_after_the_reasoning_is_kept_exactly(reasoning: str, answer: str, opened: bool) -> None:
    # Other families' markers would name another split; </think> would end the reasoning early.
    assume(not any(m in reasoning + answer for m in _MARKERS[1:]) and "</think>" not in reasoning)
    answer = answer.lstrip()
    completion = ("<think>" if opened else "") + reasoning + "</think>\n\n" + answer
    assert final_answer(completion) == answer


def test_trainer_samples_cut_text_and_chat_messages_only() -> None:
    counts = SampleCounts()

    def cut(sample: Any) -> Any:
        return openai_sample(sample, "strip", "parse", counts)

    assert cut("<think>x</think>42") == "42"
    message = {"role": "assistant", "content": "<think>x</think>42", "reasoning_content": None}
    assert cut(message) == {"role": "assistant", "content": "42", "reasoning_content": None}
    plain = {"role": "assistant", "content": "42"}
    assert cut(plain) is plain  # nothing to cut: the same object
    sample = {"output_text": "<think>x</think>42"}  # OpenAI's sample shape: given as it is
    assert cut(sample) is sample
    assert cut(None) is None
    assert cut("<think>\nunfinished") == ""
    assert counts == SampleCounts(reasoning=3, unfinished=1)
