"""Tool calls read out of an open model's completion, as vLLM's hermes and gpt-oss
parsers read them (parity with verl's own parsers: test_real_trainers.py)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rftgrade._toolcalls import ToolCallSplit, split_tool_calls, tool_call_mode


def call(index: int, name: str, arguments: str) -> dict[str, Any]:
    return {"id": f"call_{index}", "type": "function", "function": {"name": name, "arguments": arguments}}


WEATHER = call(0, "get_weather", '{"city": "Paris"}')
HERMES = '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>'


@pytest.mark.parametrize(
    ("completion", "expected"),
    [
        (HERMES, ToolCallSplit("", [WEATHER])),
        # the text before the first call is the message's text, as vLLM's content
        (f"Let me look.\n{HERMES}", ToolCallSplit("Let me look.\n", [WEATHER])),
        # Qwen3: the reasoning is cut first, and a call only thought about is not made
        (
            '<think>\nMaybe <tool_call>{"name": "x", "arguments": {}}</tool_call>.\n</think>\n\n' + HERMES,
            ToolCallSplit("", [WEATHER], had_reasoning=True),
        ),
        # two calls, the second cut at the length limit (vLLM counts it)
        (
            HERMES + '\n<tool_call>\n{"name": "get_time", "arguments": {"tz": "CET"}}',
            ToolCallSplit("", [WEATHER, call(1, "get_time", '{"tz": "CET"}')]),
        ),
        # arguments that are not an object are JSON text all the same (vLLM: json.dumps)
        (
            '<tool_call>{"name": "ping", "arguments": "now"}</tool_call>',
            ToolCallSplit("", [call(0, "ping", '"now"')]),
        ),
        # one block that is not a call: the completion is text, with no calls
        (
            HERMES + '<tool_call>{"name": "get_time"}</tool_call>',
            ToolCallSplit(HERMES + '<tool_call>{"name": "get_time"}</tool_call>', [], malformed=2),
        ),
        (
            "<tool_call>not json</tool_call>",
            ToolCallSplit("<tool_call>not json</tool_call>", [], malformed=1),
        ),
        (
            '<tool_call>{"name": 3, "arguments": {}}</tool_call>',
            ToolCallSplit('<tool_call>{"name": 3, "arguments": {}}</tool_call>', [], malformed=1),
        ),
        # gpt-oss with its special tokens (OpenRLHF), the recipient in the channel
        (
            "<|channel|>analysis<|message|>Need the weather.<|end|><|start|>assistant<|channel|>commentary "
            'to=functions.get_weather <|constrain|>json<|message|>{"city": "Paris"}<|call|>',
            ToolCallSplit("", [WEATHER], had_reasoning=True),
        ),
        # ... or in the role section
        (
            "<|start|>assistant to=functions.get_weather<|channel|>commentary json<|message|>"
            '{"city": "Paris"}<|call|>',
            ToolCallSplit("", [WEATHER]),
        ),
        # decoded without special tokens (verl)
        (
            'analysisNeed the weather.assistantcommentary to=functions.get_weather json{"city": "Paris"}',
            ToolCallSplit("", [WEATHER], had_reasoning=True),
        ),
        ('assistant to=functions.get_weather commentary json{"city": "Paris"}', ToolCallSplit("", [WEATHER])),
        # no call markup: nothing to split
        ("The weather is fine.", None),
        ("<think>\nA call: <tool_call>{}</tool_call>\n</think>\n\nNo call.", None),
        (
            "<|channel|>analysis<|message|>x<|end|><|start|>assistant<|channel|>final<|message|>42<|return|>",
            None,
        ),
    ],
)
def test_split_tool_calls(completion: str, expected: ToolCallSplit | None) -> None:
    assert split_tool_calls(completion) == expected


def test_kept_reasoning_stays_in_the_text() -> None:
    qwen3 = "<think>\nThe weather.\n</think>\n\n" + HERMES
    assert split_tool_calls(qwen3, keep_reasoning=True) == ToolCallSplit(
        "<think>\nThe weather.\n</think>\n\n", [WEATHER]
    )
    harmony = (
        "<|channel|>analysis<|message|>Need it.<|end|><|start|>assistant<|channel|>commentary "
        'to=functions.get_weather <|constrain|>json<|message|>{"city": "Paris"}<|call|>'
    )
    kept = split_tool_calls(harmony, keep_reasoning=True)
    assert kept == ToolCallSplit("<|channel|>analysis<|message|>Need it.<|end|>", [WEATHER])


def test_the_message_is_what_make_sample_reads_as_output_tools() -> None:
    from rftgrade._sample import make_sample

    split = split_tool_calls(f"Checking.{HERMES}")
    assert split is not None
    sample = make_sample(split.message())
    assert sample.output_text == "Checking."
    assert sample.output_tools == [WEATHER]
    assert sample.choices[0]["message"]["tool_calls"] == [WEATHER]


names = st.from_regex(r"[A-Za-z_][A-Za-z0-9_\-]{0,20}", fullmatch=True)
arguments = st.dictionaries(
    st.text(min_size=1, max_size=8),
    st.one_of(
        st.integers(), st.text(max_size=12), st.booleans(), st.none(), st.lists(st.integers(), max_size=3)
    ),
    max_size=4,
)


@given(st.lists(st.tuples(names, arguments), min_size=1, max_size=3), st.text(max_size=30))
def test_any_hermes_call_reads_back(calls: list[tuple[str, dict[str, Any]]], before: str) -> None:
    before = before.replace("<", "").replace("to=", "")  # text with no call markup of its own
    text = before + "".join(
        f"<tool_call>\n{json.dumps({'name': n, 'arguments': a}, ensure_ascii=False)}\n</tool_call>\n"
        for n, a in calls
    )
    split = split_tool_calls(text, keep_reasoning=True)
    assert split is not None and split.content == before
    assert [
        (c["function"]["name"], json.loads(c["function"]["arguments"])) for c in split.tool_calls
    ] == calls


@given(st.text().filter(lambda t: "<tool_call>" not in t and "to=functions." not in t))
def test_text_without_call_markup_is_left_alone(text: str) -> None:
    assert split_tool_calls(text) is None


def test_the_mode_comes_from_the_flag_then_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RFTGRADE_TOOL_CALLS", raising=False)
    assert tool_call_mode(None) == "parse"
    monkeypatch.setenv("RFTGRADE_TOOL_CALLS", "keep")
    assert tool_call_mode(None) == "keep"
    assert tool_call_mode("parse") == "parse"
    monkeypatch.setenv("RFTGRADE_TOOL_CALLS", "hermes")
    with pytest.raises(
        ValueError, match=r"--tool-calls \(or RFTGRADE_TOOL_CALLS\) is 'hermes'; use parse or keep"
    ):
        tool_call_mode(None)


SCHEMA = [
    {
        "type": "function",
        "function": {
            "name": "book",
            "parameters": {
                "type": "object",
                "properties": {
                    "city": {"type": "string"},
                    "nights": {"type": "integer"},
                    "budget": {"type": "number"},
                    "late": {"type": "boolean"},
                    "rooms": {"type": "array"},
                    "guest": {"type": "object"},
                },
            },
        },
    }
]


def xml(*parameters: tuple[str, str], name: str = "book") -> str:
    body = "".join(f"<parameter={key}>\n{value}\n</parameter>\n" for key, value in parameters)
    return f"<tool_call>\n<function={name}>\n{body}</function>\n</tool_call>"


def xml_arguments(text: str, tools: Any = None) -> list[Any]:
    split = split_tool_calls(text, tools=(lambda: tools) if tools is not None else None)
    assert split is not None
    return [(c["function"]["name"], json.loads(c["function"]["arguments"])) for c in split.tool_calls]


def test_qwen3_coder_calls_are_typed_by_the_rows_schema() -> None:
    text = "<think>\nBook it.\n</think>\n\n" + xml(
        ("city", "Oslo"),
        ("nights", "3"),
        ("budget", "250.5"),
        ("late", "True"),
        ("rooms", "[1, 2]"),
        ("guest", '{"name": "Ada"}'),
    )
    typed = {
        "city": "Oslo",
        "nights": 3,
        "budget": 250.5,
        "late": True,
        "rooms": [1, 2],
        "guest": {"name": "Ada"},
    }
    assert xml_arguments(text, SCHEMA) == [("book", typed)]
    # Without the row's schema every value is its text, as vLLM's parser leaves it.
    as_text = {"city": "Oslo", "nights": "3", "budget": "250.5", "late": "True", "rooms": "[1, 2]"}
    assert xml_arguments(text) == [("book", {**as_text, "guest": '{"name": "Ada"}'})]
    split = split_tool_calls(text)
    assert split is not None and split.content == "" and split.had_reasoning


def test_qwen3_coder_values_that_are_not_of_their_type_stay_text() -> None:
    text = xml(("nights", "three"), ("budget", "2.0"), ("rooms", "__import__('os')"), ("city", "null"))
    assert xml_arguments(text, SCHEMA) == [
        ("book", {"nights": "three", "budget": 2, "rooms": "__import__('os')", "city": None})
    ]


def test_qwen3_coder_several_calls_and_a_broken_function_header() -> None:
    text = (
        "Sure." + xml(("city", "Rome")) + "\n" + xml(("x", "1"), name="other") + "<tool_call>\n<function=cut"
    )
    assert xml_arguments(text, SCHEMA) == [("book", {"city": "Rome"}), ("other", {"x": "1"})]
    split = split_tool_calls(text)
    assert split is not None and split.content == "Sure."


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    "text",
    [
        "to=functions.x<|message|>" + "a" * 2_000_000,  # a run with no "<": once a fresh scan per position
        ("<|start|>assistant" + "b" * 300 + "<|channel|>") * 5_000 + "to=functions.x<|message|>",
        "<|message|>" + "assistant to=functions.x" * 80_000,
        "<tool_call>" * 100_000 + "{" * 500_000,
        "<tool_call><function=f>" + "<parameter=a>" * 100_000 + "[" * 500_000,
        '<tool_call>{"name": "f", "arguments": ' + "[" * 100_000 + "]" * 100_000 + "}</tool_call>",
    ],
    ids=[
        "harmony-run",
        "harmony-headers",
        "harmony-recipients",
        "hermes-opens",
        "xml-parameters",
        "deep-json",
    ],
)
def test_a_long_hostile_completion_does_not_hang_the_reader(text: str) -> None:
    # A policy under RL can write anything, at any length: the reader stays linear in it,
    # and never raises (JSON nested past the interpreter's limit is a call that did not parse).
    split = split_tool_calls(text)
    assert split is None or isinstance(split.tool_calls, list)
