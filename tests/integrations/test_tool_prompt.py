"""``rftgrade export dataset`` on rows that offer ``tools``: the tools in each prompt's
system turn, token for token as a Qwen3-style chat template renders them when it is
given the tools; left out when told; a row whose tools are not tools is named."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from rftgrade.cli.main import app
from rftgrade.testing.tiny_lm import tiny_tokenizer

# Qwen3's chat template, the parts a single-turn prompt uses: the system turn, with its
# tools block when it is given tools, then the turns and the generation prompt.
QWEN3_TEMPLATE = (
    "{%- if tools %}"
    "{{- '<|im_start|>system\\n' }}"
    "{%- if messages[0].role == 'system' %}{{- messages[0].content + '\\n\\n' }}{%- endif %}"
    '{{- "# Tools\\n\\nYou may call one or more functions to assist with the user query.\\n\\n'
    'You are provided with function signatures within <tools></tools> XML tags:\\n<tools>" }}'
    '{%- for tool in tools %}{{- "\\n" }}{{- tool | tojson }}{%- endfor %}'
    '{{- "\\n</tools>\\n\\nFor each function call, return a json object with function name and arguments '
    'within <tool_call></tool_call> XML tags:\\n<tool_call>\\n{\\"name\\": <function-name>, '
    '\\"arguments\\": <args-json-object>}\\n</tool_call><|im_end|>\\n" }}'
    "{%- else %}"
    "{%- if messages[0].role == 'system' %}"
    "{{- '<|im_start|>system\\n' + messages[0].content + '<|im_end|>\\n' }}"
    "{%- endif %}"
    "{%- endif %}"
    "{%- for message in messages %}"
    "{%- if message.role != 'system' %}"
    "{{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>\\n' }}"
    "{%- endif %}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Météo d'une ville",  # non-ASCII: tojson keeps it as it is
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
            },
        },
    },
    {
        "type": "function",
        "function": {"name": "get_time", "parameters": {"type": "object", "properties": {}}},
    },
]
ROWS: list[dict[str, Any]] = [
    {
        "messages": [
            {"role": "developer", "content": "Call a tool."},
            {"role": "user", "content": "Rain in Paris?"},
        ],
        "tools": TOOLS,
        "expected": "get_weather",
    },
    {"messages": [{"role": "user", "content": "Time?"}], "tools": TOOLS[1:], "expected": "get_time"},
    {"messages": [{"role": "user", "content": "Say hi."}], "expected": None},  # no tools: prompt as it was
]


def export(tmp_path: Path, rows: list[dict[str, Any]], *options: str) -> tuple[Any, Path]:
    data, out = tmp_path / "train.jsonl", tmp_path / "trl.jsonl"
    data.write_text("".join(json.dumps(row) + "\n" for row in rows))
    args = ["export", "dataset", str(data), "--trainer", "trl", "-o", str(out), *options]
    return CliRunner().invoke(app, args), out


def rendered(messages: list[dict[str, str]], tools: list[dict[str, Any]] | None = None) -> str:
    tokenizer = tiny_tokenizer()
    text = tokenizer.apply_chat_template(
        messages, tools=tools, chat_template=QWEN3_TEMPLATE, add_generation_prompt=True, tokenize=False
    )
    assert isinstance(text, str)
    return text


def test_the_prompt_is_the_one_the_template_renders_with_the_tools(tmp_path: Path) -> None:
    result, out = export(tmp_path, ROWS)
    assert result.exit_code == 0, result.output
    assert "2 row(s) offer tools: written into each prompt's system turn" in result.output
    written = [json.loads(line) for line in out.read_text().splitlines()]
    for row, exported in zip(ROWS, written, strict=True):
        original = [
            {"role": "system" if m["role"] == "developer" else m["role"], "content": m["content"]}
            for m in row["messages"]
        ]
        # The exported prompt, rendered without tools, is the original rendered with them.
        assert rendered(exported["prompt"]) == rendered(original, row.get("tools"))
        assert json.loads(exported["rftgrade_item"]) == row  # the item is untouched
    assert "# Tools" in written[0]["prompt"][0]["content"] and "Météo" in written[0]["prompt"][0]["content"]
    assert written[2]["prompt"] == [{"role": "user", "content": "Say hi."}]


def test_none_leaves_the_tools_to_the_trainer(tmp_path: Path) -> None:
    result, out = export(tmp_path, ROWS, "--tool-prompt", "none")
    assert result.exit_code == 0, result.output
    assert (
        "2 row(s) offer tools: the item keeps them, the prompt does not (--tool-prompt none)" in result.output
    )
    first = json.loads(out.read_text().splitlines()[0])
    assert first["prompt"] == [
        {"role": "system", "content": "Call a tool."},
        {"role": "user", "content": "Rain in Paris?"},
    ]


@pytest.mark.parametrize(
    ("tools", "message"),
    [
        ({"type": "function"}, "line 1: `tools` must be a list of tools, got dict"),
        (["get_weather"], 'line 1: tools[0] is a str; a tool is {"type": "function"'),
    ],
)
def test_tools_that_are_not_tools_are_named(tmp_path: Path, tools: Any, message: str) -> None:
    result, out = export(tmp_path, [{**ROWS[1], "tools": tools}])
    assert result.exit_code == 1 and message in result.output and not out.exists()


def test_an_unknown_tool_prompt_says_what_to_pass(tmp_path: Path) -> None:
    result, _ = export(tmp_path, ROWS, "--tool-prompt", "qwen")
    assert result.exit_code == 2 and "--tool-prompt is 'qwen'; use hermes or none" in result.output
