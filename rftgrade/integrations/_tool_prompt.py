"""A row's ``tools`` in the training prompt, as the model's own chat template writes them.

OpenAI RFT rows may offer ``tools`` (a reserved key beside ``messages``), and OpenAI
showed them to the model. verl's, TRL's and OpenRLHF's datasets take a prompt of chat
turns and no per-row tools (verl and TRL take tools for the whole run, as tools they
execute in a multi-turn loop, which is not what an RFT row asks), so ``rftgrade export
dataset`` writes each row's tools into its system turn, in the words Qwen3's chat
template uses when it is given tools. For Qwen3 the prompt is then token for token the
one its template renders with the tools (for Qwen2.5 too when the row has a system
turn; without one, its template would first write its default system line). Any other
model reads a plain instruction to answer in ``<tool_call>`` blocks (the Hermes format,
which most open chat models were tuned on), the format :mod:`rftgrade._toolcalls` reads
back as ``sample.output_tools``.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["TOOL_PROMPTS", "hermes_tools_block", "with_tools"]

TOOL_PROMPTS = ("hermes", "none")
"""``hermes``: the tools in the system turn (the default); ``none``: the prompt without them."""

_HEAD = (
    "# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
    "You are provided with function signatures within <tools></tools> XML tags:\n<tools>"
)
_TAIL = (
    "\n</tools>\n\nFor each function call, return a json object with function name and arguments within "
    '<tool_call></tool_call> XML tags:\n<tool_call>\n{"name": <function-name>, "arguments": '
    "<args-json-object>}\n</tool_call>"
)


def hermes_tools_block(tools: list[dict[str, Any]]) -> str:
    """The block Qwen3's template writes for ``tools``: each one as ``tojson`` renders it
    (``json.dumps`` with its default separators and the keys in their order)."""
    return _HEAD + "".join("\n" + json.dumps(tool, ensure_ascii=False) for tool in tools) + _TAIL


def with_tools(prompt: list[dict[str, str]], tools: list[dict[str, Any]]) -> list[dict[str, str]]:
    """``prompt`` with ``tools`` at the end of its system turn (a new first turn when it has none)."""
    block = hermes_tools_block(tools)
    if prompt and prompt[0]["role"] == "system":
        return [{"role": "system", "content": prompt[0]["content"] + "\n\n" + block}, *prompt[1:]]
    return [{"role": "system", "content": block}, *prompt]
