"""The tool calls in an open model's completion: what OpenAI's grader saw as ``output_tools``.

An OpenAI RFT row may offer ``tools``; the model's answer is then a tool call, and
OpenAI's grader read it as ``sample.output_tools`` (Chat Completions ``tool_calls``:
``{"id", "type": "function", "function": {"name", "arguments": <JSON text>}}``), with
``output_text`` the message's text beside it. An open model writes its calls into the
completion, and a trainer hands rftgrade that text:

- **Hermes** (Qwen2.5, Qwen3, Hermes, and most open chat models):
  ``<tool_call>{"name": ..., "arguments": {...}}</tool_call>``, after the reasoning;
- **Qwen3-Coder's XML** (Qwen3-Coder, Qwen3.5): ``<tool_call><function=NAME>
  <parameter=KEY>VALUE</parameter></function></tool_call>``, each value typed by the
  row's tool schema (a string where the row gives none), as vLLM's ``qwen3_coder``
  parser types it;
- **harmony** (gpt-oss): a commentary message to ``functions.NAME``,
  ``<|start|>assistant<|channel|>commentary to=functions.NAME <|constrain|>json
  <|message|>{...}<|call|>`` with its special tokens kept (OpenRLHF), or
  ``assistantcommentary to=functions.NAME json{...}`` decoded without them (verl).

A grader moved from OpenAI then finds ``output_tools`` empty and the call in
``output_text``: a check of ``{{ sample.output_tools[0].function.name }}`` fails on
every row. So the trainer adapters read the calls out of each completion as vLLM's
``hermes``, ``qwen3_coder`` and ``openai`` tool parsers do for ``rftgrade eval``'s
endpoint, and the two agree: the text is what precedes the first call; one JSON block
that does not parse as a call leaves the whole completion as text, with no calls
(vLLM's rule), while an XML function with no ``>`` after its name is skipped; a harmony
call's arguments are its message as written (vLLM and verl do not check them either).
``RFTGRADE_TOOL_CALLS=keep`` grades the completion as decoded, for a grader written to
read the markup. ``rftgrade grade``, ``run``, ``/v1/grade`` and ``graders/run`` grade
a sample as given, as OpenAI's API did.

Other formats (GLM's ``<arg_key>``, Mistral's ``[TOOL_CALLS]``, Llama's bare JSON) are
left as text.
"""

from __future__ import annotations

import ast
import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from rftgrade._json import loads
from rftgrade._reasoning import split_answer

__all__ = [
    "HARMONY_RECIPIENT",
    "HERMES_OPEN",
    "TOOL_CALL_MODES",
    "ToolCallSplit",
    "split_tool_calls",
    "tool_call_mode",
]

TOOL_CALL_MODES = ("parse", "keep")
"""``parse``: a completion's tool calls become ``output_tools`` (the default); ``keep``: the text as decoded."""


def tool_call_mode(flag: str | None) -> str:
    """A command's mode: its ``--tool-calls``, else ``RFTGRADE_TOOL_CALLS``, else ``parse``.

    Raises ValueError naming the flag and the variable when the value is not a mode.
    """
    mode = flag or os.environ.get("RFTGRADE_TOOL_CALLS") or "parse"
    if mode not in TOOL_CALL_MODES:
        raise ValueError(f"--tool-calls (or RFTGRADE_TOOL_CALLS) is {mode!r}; use parse or keep")
    return mode


@dataclass(frozen=True)
class ToolCallSplit:
    """A completion read as a chat message: its text and its tool calls."""

    content: str
    """The message's text (``output_text``), the reasoning cut unless it is kept."""
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    """The calls in Chat Completions' shape; empty when a call did not parse."""
    malformed: int = 0
    """JSON blocks that did not parse as a call (the completion then stays text)."""
    had_reasoning: bool = False
    """Reasoning was found before the calls, and is not in :attr:`content`."""

    def message(self) -> dict[str, Any]:
        """The Chat Completions assistant message, which :func:`~rftgrade.make_sample` reads."""
        return {"role": "assistant", "content": self.content, "tool_calls": self.tool_calls}


HERMES_OPEN = "<tool_call>"
"""Where a Hermes (and Qwen3-Coder) call opens; the adapters test for it before reading."""
# vLLM's hermes parser: a last block cut at the length limit still counts.
_HERMES = re.compile(r"<tool_call>(.*?)</tool_call>|<tool_call>(.*)", re.DOTALL)
HARMONY_RECIPIENT = "to=functions."
"""What names a harmony call's recipient, with or without its special tokens."""
# Harmony's markers. A message is [<|start|>assistant HEAD]<|channel|>CHANNEL
# [<|constrain|>...]<|message|>BODY, up to its end token or the next message's start;
# the head or the channel names the recipient. Headers are short: bounding them keeps
# the scan linear in the completion (a policy's output can be anything, and long).
_CHANNEL, _MESSAGE, _START = "<|channel|>", "<|message|>", "<|start|>"
_HEADER = 256
_END = re.compile(r"<\|call\|>|<\|end\|>|<\|return\|>|(?=<\|start\|>)")
_NAME = re.compile(r"to=functions\.([A-Za-z0-9_\-]+)")
# The same call decoded without special tokens: "...assistantcommentary to=functions.NAME json{...}".
_HARMONY_BARE = re.compile(
    r"(?:^|assistant)\s?(?:commentary\s)?to=functions\.(?P<name>[A-Za-z0-9_\-]+)(?:\s?commentary)?(?:\s?json)?(?P<body>.*)$",
    re.DOTALL,
)


def _call(index: int, name: str, arguments: str) -> dict[str, Any]:
    return {"id": f"call_{index}", "type": "function", "function": {"name": name, "arguments": arguments}}


def _hermes(text: str, had_reasoning: bool, tools: Callable[[], Any]) -> ToolCallSplit:
    calls: list[dict[str, Any]] = []
    matches = _HERMES.findall(text)
    for closed, open_ended in matches:
        block = closed or open_ended
        if _XML_FUNCTION_OPEN in block:
            for name, arguments in _xml_calls(block, tools):
                calls.append(_call(len(calls), name, arguments))
            continue
        try:
            call = loads(block)  # orjson, else the stdlib: what json.loads accepts
            name, arguments = call["name"], call["arguments"]
            if not isinstance(name, str):
                raise TypeError(name)
            arguments_text = json.dumps(arguments, ensure_ascii=False)
        # RecursionError: nested past the interpreter's limit, and past any tool's need.
        except (ValueError, KeyError, TypeError, RecursionError):
            # vLLM: one block that is not a call, and the completion is text.
            return ToolCallSplit(text, [], len(matches), had_reasoning)
        calls.append(_call(len(calls), name, arguments_text))
    return ToolCallSplit(text[: text.find(HERMES_OPEN)], calls, 0, had_reasoning)


_XML_FUNCTION_OPEN = "<function="
_XML_FUNCTION = re.compile(r"<function=(.*?)</function>|<function=(.*)$", re.DOTALL)
_XML_PARAMETER = re.compile(r"<parameter=(.*?)</parameter>|<parameter=(.*?)$", re.DOTALL)
_STRINGS = ("string", "str", "text", "varchar", "char", "enum")
_INTEGERS = ("int", "uint", "long", "short", "unsigned")


def _xml_calls(block: str, tools: Callable[[], Any]) -> list[tuple[str, str]]:
    """The ``<function=NAME>`` calls of one block, as ``(name, arguments JSON)``; a
    function or parameter with no ``>`` after its name is skipped (vLLM's rule)."""
    calls = []
    for closed, open_ended in _XML_FUNCTION.findall(block):
        function = closed or open_ended
        end = function.find(">")
        if end < 0:
            continue
        name = function[:end]
        properties = _properties(tools(), name)
        arguments: dict[str, Any] = {}
        for p_closed, p_open in _XML_PARAMETER.findall(function[end + 1 :]):
            parameter = p_closed or p_open
            at = parameter.find(">")
            if at < 0:
                continue
            value = parameter[at + 1 :]
            value = value[1:] if value.startswith("\n") else value
            value = value[:-1] if value.endswith("\n") else value
            arguments[parameter[:at]] = _typed(value, properties.get(parameter[:at]))
        calls.append((name, json.dumps(arguments, ensure_ascii=False)))
    return calls


def _properties(tools: Any, name: str) -> dict[str, Any]:
    """The parameters' schemas of the tool called ``name`` among the row's ``tools``."""
    for tool in tools if isinstance(tools, list) else ():
        function = tool.get("function") if isinstance(tool, dict) else None
        if isinstance(function, dict) and function.get("name") == name:
            parameters = function.get("parameters")
            properties = parameters.get("properties") if isinstance(parameters, dict) else None
            return properties if isinstance(properties, dict) else {}
    return {}


def _typed(value: str, schema: Any) -> Any:
    """``value`` as its schema's type says, as vLLM's ``qwen3_coder`` parser reads it: a
    string where there is no schema, or where the value is not of the type."""
    if value.lower() == "null":
        return None
    if schema is None:
        return value
    kind = str(schema.get("type", "string")).strip().lower() if isinstance(schema, dict) else "string"
    if kind in _STRINGS:
        return value
    try:
        if kind.startswith(_INTEGERS):
            return int(value)
        if kind.startswith(("num", "float")):
            number = float(value)
            return number if number - int(number) != 0 else int(number)
        if kind in ("boolean", "bool", "binary"):
            return value.lower() == "true"
        if kind == "object" or kind.startswith("dict"):
            try:
                return json.loads(value)
            except ValueError:
                pass
        return ast.literal_eval(value)  # literals only: the value is the model's, untrusted
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError, OverflowError):
        return value


def _harmony(text: str, keep_reasoning: bool) -> ToolCallSplit | None:
    calls: list[dict[str, Any]] = []
    kept: list[str] = []
    final = ""
    at = 0
    channel_at = text.find(_CHANNEL)
    while channel_at >= 0:
        message_at = text.find(_MESSAGE, channel_at, channel_at + len(_CHANNEL) + _HEADER)
        if message_at < 0:
            channel_at = text.find(_CHANNEL, channel_at + len(_CHANNEL))
            continue
        channel = text[channel_at + len(_CHANNEL) : message_at].partition("<|constrain|>")[0]
        marker = text.rfind("|>", max(0, channel_at - _HEADER), channel_at)
        head_at = marker + 2 if marker >= 0 else max(0, channel_at - _HEADER)
        starts = head_at - len(_START)
        begin = starts if starts >= 0 and text.startswith(_START, starts) else head_at
        body_at = message_at + len(_MESSAGE)
        end = _END.search(text, body_at)
        body_end, after = (end.start(), end.end()) if end else (len(text), len(text))
        name = _NAME.search(text, head_at, channel_at) or _NAME.search(channel)
        if name is not None:
            calls.append(_call(len(calls), name[1], text[body_at:body_end]))
            kept.append(text[at:begin])
            at = after
        elif channel.strip().startswith("final"):
            final = text[body_at:body_end]
        channel_at = text.find(_CHANNEL, max(after, body_at))
    if not calls:
        return None
    reasoning = "<|channel|>analysis" in text
    if keep_reasoning:
        return ToolCallSplit("".join(kept) + text[at:], calls, 0, False)
    return ToolCallSplit(final, calls, 0, reasoning)


def _harmony_bare(text: str, keep_reasoning: bool) -> ToolCallSplit | None:
    match = _HARMONY_BARE.search(text, max(0, text.rfind(HARMONY_RECIPIENT) - len("assistant commentary ")))
    if match is None:
        return None
    call = _call(0, match["name"], match["body"])
    if keep_reasoning:
        return ToolCallSplit(text[: match.start()], [call], 0, False)
    return ToolCallSplit("", [call], 0, text.startswith("analysis"))


def split_tool_calls(
    text: str, keep_reasoning: bool = False, tools: Callable[[], Any] | None = None
) -> ToolCallSplit | None:
    """``text``'s tool calls and the text beside them (the module's text says how they
    are found); ``None`` when it holds no call markup. Unless ``keep_reasoning``, the
    reasoning before the calls is cut from the text, as :mod:`rftgrade._reasoning` cuts
    it from an answer. ``tools`` returns the row's tools (OpenAI's ``tools`` list), whose
    schemas type an XML call's values; it is called only for such a call.
    """
    if HARMONY_RECIPIENT in text:
        split = (
            _harmony(text, keep_reasoning) if "<|message|>" in text else _harmony_bare(text, keep_reasoning)
        )
        if split is not None:
            return split
    if HERMES_OPEN not in text:
        return None
    had_reasoning = False
    if not keep_reasoning:
        # Reasoning first, as vLLM's reasoning parser runs before its tool parser: a
        # call the model only thought about is not one it made.
        answer = split_answer(text)
        text, had_reasoning = answer.text, answer.had_reasoning
        if HERMES_OPEN not in text:
            return None
    return _hermes(text, had_reasoning, tools or _no_tools)


def _no_tools() -> None:
    return None
