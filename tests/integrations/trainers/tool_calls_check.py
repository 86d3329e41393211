"""A function-calling RFT dataset: the model's tool calls through verl's and OpenRLHF's
own reward paths, and read by verl's own tool parsers (run with the trainers' venv).

The rows offer ``tools``, and the grader checks the call the way a grader written for
OpenAI does: ``sample["output_tools"][0]``'s name and arguments. The completions are
written as Qwen3 writes calls (``<tool_call>`` blocks of JSON, added tokens that a decode
keeps), as Qwen3-Coder and Qwen3.5 do (the same blocks holding XML, whose values the
row's tool schema types) and as gpt-oss does (harmony's special tokens, which verl's
decode drops and OpenRLHF's keeps). The rewards must equal the grader's own on the samples OpenAI's grader saw
(``output_tools`` set, the text empty). verl's ``HermesToolParser`` and
``GptOssToolParser`` and ``Qwen3XMLToolParser`` (what its tool agent loop uses) read the same ids, and must find
the same calls. With ``RFTGRADE_TOOL_CALLS=keep`` no call is read and every reward is
lost, so the check can fail. Prints one RESULT line.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from _common import emit
from dataset_check import export, openrlhf_run, verl_scores
from reasoning_check import reasoning_tokenizer

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": name,
            "description": f"{name.replace('_', ' ')} of a place",
            "parameters": {
                "type": "object",
                "properties": {key: {"type": "string"}, "days": {"type": "integer"}},
                "required": [key],
            },
        },
    }
    for name, key in (("get_weather", "city"), ("get_time", "tz"))
]
ROWS: list[dict[str, Any]] = [
    {
        "messages": [{"role": "user", "content": "Is it raining in Paris?"}],
        "tools": TOOLS,
        "expected": {"name": "get_weather", "arguments": {"city": "Paris", "days": 3}},
    },
    {
        "messages": [{"role": "user", "content": "What time is it in Oslo?"}],
        "tools": TOOLS,
        "expected": {"name": "get_time", "arguments": {"tz": "Europe/Oslo"}},
    },
    {
        "messages": [{"role": "user", "content": "Weather in Lima?"}],
        "tools": TOOLS,
        "expected": {"name": "get_weather", "arguments": {"city": "Lima"}},
    },
]
# What the model calls: right, right, and the wrong tool with the right arguments (half the reward).
CALLS = [
    ("get_weather", {"city": "Paris", "days": 3}),  # an integer: Qwen3-Coder's XML needs the schema
    ("get_time", {"tz": "Europe/Oslo"}),
    ("get_time", {"city": "Lima"}),
]

GRADER: dict[str, Any] = {
    "type": "python",
    "name": "tool_call",
    "source": (
        "import json\n"
        "def grade(sample, item):\n"
        "    calls = sample['output_tools']\n"
        "    if not calls:\n"
        "        return 0.0\n"
        "    fn = calls[0]['function']\n"
        "    want = item['expected']\n"
        "    name = 1.0 if fn['name'] == want['name'] else 0.0\n"
        "    args = 1.0 if json.loads(fn['arguments']) == want['arguments'] else 0.0\n"
        "    return 0.5 * name + 0.5 * args\n"
    ),
}


def qwen3(name: str, arguments: dict[str, Any]) -> str:
    call = json.dumps({"name": name, "arguments": arguments})
    return f"<think>\nThe user needs a tool.\n</think>\n\n<tool_call>\n{call}\n</tool_call>"


def qwen3_coder(name: str, arguments: dict[str, Any]) -> str:
    # Qwen3-Coder's and Qwen3.5's XML: each value as text, typed by the tool's schema.
    parameters = "".join(f"<parameter={k}>\n{v}\n</parameter>\n" for k, v in arguments.items())
    return f"<think>\nThe user needs a tool.\n</think>\n\n<tool_call>\n<function={name}>\n{parameters}</function>\n</tool_call>"


def gpt_oss(name: str, arguments: dict[str, Any]) -> str:
    return (
        "<|channel|>analysis<|message|>The user needs a tool.<|end|><|start|>assistant<|channel|>commentary "
        f"to=functions.{name} <|constrain|>json<|message|>{json.dumps(arguments)}<|call|>"
    )


def tool_tokenizer() -> Any:
    tok = reasoning_tokenizer()
    tok.add_tokens(["<tool_call>", "</tool_call>"])  # as Qwen's: added, not special
    tok.add_tokens(["<|call|>", "<|constrain|>"], special_tokens=True)
    return tok


def verl_parsers(tok: Any, texts: dict[str, list[str]]) -> dict[str, Any]:
    """The calls verl's own tool parsers find in each completion's ids."""
    import importlib.util

    import verl

    # The module itself, not its package: the package's __init__ imports the whole agent
    # loop, whose router needs cachetools, which verl does not declare.
    path = Path(verl.__file__).parent / "experimental" / "agent_loop" / "tool_parser.py"
    spec = importlib.util.spec_from_file_location("verl_tool_parser", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    ToolParser = module.ToolParser

    schemas = [module.OpenAIFunctionToolSchema.model_validate(tool) for tool in TOOLS]
    found: dict[str, Any] = {}
    for parser_name, wrap in (("hermes", "qwen3"), ("gpt-oss", "gpt_oss"), ("qwen3_coder", "qwen3_coder")):
        parser = ToolParser.get_tool_parser(parser_name, tok)
        calls = []
        for text in texts[wrap]:
            ids = tok(text, add_special_tokens=False)["input_ids"]
            _, functions = asyncio.run(parser.extract_tool_calls(ids, schemas))
            calls.append([[f.name, json.loads(f.arguments)] for f in functions])
        found[parser_name] = calls
    return found


def rftgrade_reads(tok: Any, texts: dict[str, list[str]]) -> dict[str, Any]:
    """The calls rftgrade finds in each completion as each trainer decodes it."""
    from rftgrade._toolcalls import split_tool_calls

    found: dict[str, Any] = {}
    for wrap, completions in texts.items():
        for skip in (True, False):
            calls = []
            for text in completions:
                ids = tok(text, add_special_tokens=False)["input_ids"]
                split = split_tool_calls(tok.decode(ids, skip_special_tokens=skip), tools=lambda: TOOLS)
                calls.append(
                    [
                        [c["function"]["name"], json.loads(c["function"]["arguments"])]
                        for c in split.tool_calls
                    ]
                    if split
                    else []
                )
            found[f"{wrap}/{'skip' if skip else 'kept'}"] = calls
    return found


def main() -> None:
    from rftgrade import Grader

    logging.basicConfig(level=logging.WARNING)
    mode = sys.argv[1] if len(sys.argv) > 1 else "parse"
    tmp = Path(tempfile.mkdtemp())
    data = tmp / "train.jsonl"
    data.write_text("".join(json.dumps(row) + "\n" for row in ROWS))
    grader = tmp / "grader.json"
    grader.write_text(json.dumps(GRADER))
    os.environ.update(RFTGRADE_GRADER=str(grader), RFTGRADE_SANDBOX="process", RFTGRADE_TOOL_CALLS=mode)
    tok = tool_tokenizer()
    result: dict[str, Any] = {"mode": mode}
    # What OpenAI's grader saw: the calls as output_tools, no text.
    seen = [
        {
            "output_text": "",
            "output_tools": [{"type": "function", "function": {"name": n, "arguments": json.dumps(a)}}],
        }
        for n, a in CALLS
    ]
    with Grader(GRADER, sandbox="process") as own:
        rows = [{"sample": s, "item": r} for s, r in zip(seen, ROWS, strict=True)]
        result["own"] = [round(r.reward, 6) for r in own.run_batch(rows)]
    texts = {
        "qwen3": [qwen3(*c) for c in CALLS],
        "gpt_oss": [gpt_oss(*c) for c in CALLS],
        "qwen3_coder": [qwen3_coder(*c) for c in CALLS],
    }
    result["calls"] = [[n, a] for n, a in CALLS]
    result["verl_parsers"] = verl_parsers(tok, texts)
    result["rftgrade"] = rftgrade_reads(tok, texts)
    verl_file, openrlhf_file = tmp / "verl.jsonl", tmp / "openrlhf.jsonl"
    result["export_note"] = export(data, "verl", verl_file)
    export(data, "openrlhf", openrlhf_file)
    for name, completions in texts.items():
        # The tools block makes the prompts long for a tokenizer of one character a token.
        verl = verl_scores(verl_file, tok, answers=completions, max_prompt_length=4096)
        result[f"verl/{name}"] = verl["scores"]
        result["verl/system_turns"] = [
            p[0]["content"] for p in verl["raw_prompts"] if p[0]["role"] == "system"
        ]
        result[f"openrlhf/{name}"] = openrlhf_run(
            openrlhf_file, grader, completions, tok, ("--tool-calls", mode)
        )["openrlhf/scores"]
    emit(result)


if __name__ == "__main__":
    sys.exit(main())
