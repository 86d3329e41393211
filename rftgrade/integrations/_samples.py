"""A trainer's completion as the sample OpenAI's grader saw: the final answer, its tool calls.

A trainer hands each adapter the completion as it decoded it: a reasoning model's
reasoning before the answer (:mod:`rftgrade._reasoning`), a tool call written into the
text (:mod:`rftgrade._toolcalls`). OpenAI's grader saw neither: its ``output_text`` was
the final message's text and its ``output_tools`` the message's calls. :func:`openai_sample`
turns one completion into that sample, for every adapter and for the server's OpenRLHF
route, and counts what it did; :func:`note_samples` says so once (and counts what went
wrong, :mod:`rftgrade.integrations._loud`).

The order matters. gpt-oss's harmony calls are read first, from the text as decoded,
because their channels are told apart by the special tokens a caller may strip next.
Hermes calls are read after the reasoning is cut (a call the model only thought about
is not one it made) and after the special tokens go (OpenRLHF leaves ``<|im_end|>``
after a block, where vLLM, whose parser :mod:`rftgrade._toolcalls` follows, never sees it).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rftgrade._rawitem import RawItem
from rftgrade._reasoning import split_answer
from rftgrade._toolcalls import HARMONY_RECIPIENT, HERMES_OPEN, split_tool_calls
from rftgrade.integrations._loud import log, note_failure

__all__ = ["SampleCounts", "note_samples", "openai_sample"]


@dataclass
class SampleCounts:
    """What :func:`openai_sample` changed over a batch."""

    reasoning: int = 0
    """Completions whose reasoning was cut."""
    unfinished: int = 0
    """Completions that ended inside their reasoning (graded as the empty answer)."""
    tool_calls: int = 0
    """Completions whose tool calls became ``output_tools``."""
    malformed: int = 0
    """Completions with a tool-call block that did not parse (graded as their text)."""
    unread: int = 0
    """Completions this could not read at all (a bug of ours: graded as given, and logged)."""


def _plain(text: str, parse: bool) -> bool:
    """No reasoning and no call can be in ``text``: most completions, told apart cheaply
    (every marker but harmony's bare forms has a ``>`` or a ``]``)."""
    return (
        ">" not in text
        and "]" not in text
        and not text.startswith("analysis")
        and not (parse and HARMONY_RECIPIENT in text)
    )


def _tools_of(item: Any) -> Any:
    """The row's ``tools`` (what types an XML call's values), parsed only when asked for."""
    if isinstance(item, RawItem):
        item = item.parse()
    return item.get("tools") if isinstance(item, dict) else None


def _as_openai(
    text: str, strip: bool, parse: bool, counts: SampleCounts, clean: Callable[[str], str] | None, item: Any
) -> tuple[str, list[dict[str, Any]] | None]:
    """``text`` as ``(content, tool_calls)``; ``tool_calls`` is ``None`` when it made none."""
    if parse and HARMONY_RECIPIENT in text:
        split = split_tool_calls(text, keep_reasoning=not strip)
        if split is not None and split.tool_calls:
            counts.tool_calls += 1
            counts.reasoning += split.had_reasoning
            return (clean(split.content) if clean else split.content), split.tool_calls
    if strip:
        answer = split_answer(text)
        if answer.had_reasoning:
            text = answer.text
            counts.reasoning += 1
            counts.unfinished += answer.unfinished
    if clean is not None:
        text = clean(text)
    if parse and HERMES_OPEN in text:
        # The reasoning is already handled.
        split = split_tool_calls(text, keep_reasoning=True, tools=lambda: _tools_of(item))
        if split is not None and split.tool_calls:
            counts.tool_calls += 1
            return split.content, split.tool_calls
        counts.malformed += split is not None and split.malformed > 0
    return text, None


def openai_sample(
    sample: Any,
    reasoning: str,
    tool_calls: str,
    counts: SampleCounts,
    clean: Callable[[str], str] | None = None,
    item: Any = None,
) -> Any:
    """``sample`` (a completion's text, or a chat message) as OpenAI's grader saw it.

    With ``reasoning="strip"`` the reasoning before the answer is cut; with
    ``tool_calls="parse"`` the calls written in the text become a chat message's
    ``tool_calls`` (``output_tools``). ``clean`` (OpenRLHF's special tokens) is applied
    to the text once the harmony channels are read; ``item`` (the row's, a dict or raw)
    gives the tool schemas that type an XML call's values. A sample with nothing to change is
    returned as the same object; one that is neither text nor a chat message with text
    ``content`` (and no ``tool_calls`` of its own) is left as it is.
    """
    strip, parse = reasoning == "strip", tool_calls == "parse"
    if not (strip or parse or clean):
        return sample
    if type(sample) is str and _plain(sample, parse):
        return clean(sample) if clean is not None else sample
    try:
        return _openai_sample(sample, strip, parse, counts, clean, item)
    except Exception:  # one completion never sinks its batch, nor reaches the trainer as an exception
        global _TRACED
        if not _TRACED:  # the traceback once; note_samples counts the rest
            _TRACED = True
            log.exception("rftgrade: a completion could not be read; it is graded as given")
        counts.unread += 1
        return sample


_TRACED = False


def _openai_sample(
    sample: Any, strip: bool, parse: bool, counts: SampleCounts, clean: Callable[[str], str] | None, item: Any
) -> Any:
    if isinstance(sample, str):
        content, calls = _as_openai(sample, strip, parse, counts, clean, item)
        if calls is not None:
            return {"role": "assistant", "content": content, "tool_calls": calls}
        return content
    if (
        isinstance(sample, dict)
        and isinstance(sample.get("content"), str)
        and "output_text" not in sample
        and not sample.get("tool_calls")
    ):
        content, calls = _as_openai(sample["content"], strip, parse, counts, clean, item)
        if calls is not None:
            return {**sample, "content": content, "tool_calls": calls}
        return sample if content is sample["content"] else {**sample, "content": content}
    return sample


_SEEN: set[tuple[str, str]] = set()
_SAID = {
    "reasoning": "rftgrade: completions hold reasoning before their answer; %s grades the final answer "
    "alone, as OpenAI's grader saw it (RFTGRADE_REASONING=keep grades all of it)",
    "tool_calls": "rftgrade: completions hold tool calls; %s grades them as sample.output_tools, as OpenAI's "
    "grader saw them (RFTGRADE_TOOL_CALLS=keep leaves them in the text)",
}


def note_samples(where: str, counts: SampleCounts, length_setting: str) -> None:
    """Say once per ``where`` what :func:`openai_sample` did; count what went wrong."""
    for kind, message in _SAID.items():
        if getattr(counts, kind) and (where, kind) not in _SEEN:
            _SEEN.add((where, kind))
            log.info(message, where)
    if counts.unfinished:
        note_failure(
            "completions that ended inside their reasoning",
            where,
            f"no final answer: raise the response length ({length_setting})",
            counts.unfinished,
            "graded as the empty answer",
        )
    if counts.unread:
        note_failure(
            "completions rftgrade could not read",
            where,
            "a bug in rftgrade (the traceback is logged above); please report it",
            counts.unread,
            "graded as given",
        )
    if counts.malformed:
        note_failure(
            "completions whose tool call did not parse",
            where,
            'a <tool_call> block is not {"name": ..., "arguments": {...}} JSON; as vLLM reads it, the '
            "completion is text with no tool calls",
            counts.malformed,
            "graded as their text",
        )
