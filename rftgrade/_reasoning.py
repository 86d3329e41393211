"""The final answer of a reasoning model's completion: what OpenAI's grader saw.

OpenAI's RFT trained o-series models, whose reasoning never reaches the grader: a
sample's ``output_text`` is the final message alone. An open reasoning model's
completion, as verl and OpenRLHF decode it (and TRL, for a chat template it cannot
parse), still holds its reasoning before the answer:

- ``<think>...</think>`` (Qwen3, QwQ, DeepSeek-R1 and its distills, GLM, MiniMax).
  R1's chat template opens the tag in the prompt, so its completions hold only the
  close;
- ``[THINK]...[/THINK]`` (Magistral), ``<seed:think>...</seed:think>`` (Seed-OSS);
- gpt-oss's harmony channels: ``<|channel|>analysis<|message|>...<|end|><|start|>
  assistant<|channel|>final<|message|>ANSWER<|return|>`` with its special tokens
  kept (OpenRLHF), or ``analysis...assistantfinalANSWER`` decoded without them (verl).

A grader moved from OpenAI then reads reasoning and answer together: a
``string_check`` against the reference, ``sample.output_json`` and a judge all see
text they never saw at OpenAI, and score 0 where the answer was right, silently.
So the trainer adapters and ``rftgrade eval`` grade :func:`final_answer` of each
completion, unless told to keep the reasoning (``reasoning="keep"``,
``RFTGRADE_REASONING=keep``) for a grader written to read it. ``rftgrade grade``,
``run``, ``/v1/grade`` and ``graders/run`` grade a sample as given, as OpenAI's API did.

A completion that ends inside its reasoning (cut at the length limit before any
answer) has the empty answer: the model gave none.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

__all__ = [
    "REASONING_MODES",
    "Answer",
    "final_answer",
    "reasoning_mode",
    "split_answer",
]

REASONING_MODES = ("strip", "keep")
"""``strip``: grade the final answer alone (the default); ``keep``: the completion as decoded."""


def reasoning_mode(flag: str | None) -> str:
    """The mode of a CLI command: its ``--reasoning``, else ``RFTGRADE_REASONING``, else ``strip``.

    ``serve`` and ``eval`` share it, and the trainer adapters read the same variable
    (``RewardSource.from_env``), so a team that sets it once grades one way everywhere.
    Raises ValueError naming the flag and the variable when the value is not a mode.
    """
    mode = flag or os.environ.get("RFTGRADE_REASONING") or "strip"
    if mode not in REASONING_MODES:
        raise ValueError(f"--reasoning (or RFTGRADE_REASONING) is {mode!r}; use strip or keep")
    return mode


_TAGS = (("<think>", "</think>"), ("[THINK]", "[/THINK]"), ("<seed:think>", "</seed:think>"))
_HARMONY = "<|channel|>"
_HARMONY_FINAL = "<|channel|>final<|message|>"
_HARMONY_ENDS = ("<|return|>", "<|end|>", "<|call|>")
_HARMONY_BARE = "assistantfinal"  # "<|start|>assistant<|channel|>final<|message|>" without its special tokens


@dataclass(frozen=True)
class Answer:
    """A completion split into its final answer and what came before it."""

    text: str
    """The final answer: what OpenAI's grader would have seen."""
    had_reasoning: bool
    """Reasoning was found, and is not in :attr:`text`."""
    unfinished: bool
    """The completion ended inside its reasoning: there is no answer."""


def split_answer(text: str) -> Answer:
    """Find the reasoning in ``text`` (see the module's text) and the answer after it."""
    if ">" not in text and "]" not in text and not text.startswith("analysis"):
        return Answer(text, False, False)  # every marker but harmony's bare form has one of these
    if _HARMONY in text:
        at = text.rfind(_HARMONY_FINAL)
        if at < 0:
            thinking = f"{_HARMONY}analysis" in text
            return Answer("", True, True) if thinking else Answer(text, False, False)
        rest = text[at + len(_HARMONY_FINAL) :]
        ends = [i for i in (rest.find(end) for end in _HARMONY_ENDS) if i >= 0]
        return Answer(rest[: min(ends)] if ends else rest, True, False)
    if text.startswith("analysis") and _HARMONY_BARE in text:
        return Answer(text[text.rfind(_HARMONY_BARE) + len(_HARMONY_BARE) :], True, False)
    start = len(text) - len(text.lstrip()) if text[:1].isspace() else 0
    for opening, closing in _TAGS:
        end = text.find(closing)
        if end >= 0:
            # The template's blank line between reasoning and answer is not the answer's.
            return Answer(text[end + len(closing) :].lstrip(), True, False)
        if text.startswith(opening, start):
            return Answer("", True, True)
    return Answer(text, False, False)


def final_answer(text: str) -> str:
    """``text`` without the reasoning before its final answer (unchanged if it has none).

    >>> final_answer("<think>\\n6 x 7 is 42\\n</think>\\n\\n42")
    '42'
    """
    return split_answer(text).text
