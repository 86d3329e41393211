"""Template parsing and rendering edge cases."""

from __future__ import annotations

import pytest

from rftgrade import Grader, make_sample
from rftgrade._template import TemplateSyntaxError, VariableError, parse_template

from .conftest import string_check

NS = {
    "sample": make_sample(
        {
            "output_text": "hi",
            "output_tools": [
                {"id": "c1", "type": "function", "function": {"name": "lookup", "arguments": '{"q": 1}'}}
            ],
        }
    ).namespace(),
    "item": {
        "a": {"b": [10, {"c": "deep"}]},
        "n": 3,
        "f": 0.5,
        "flag": True,
        "none": None,
        "list": [1, "x"],
        "obj": {"k": "v", "é": "ü"},
        "with space": "ok",
        "emoji": "🦀",
    },
}


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{{item.a.b[0]}}", "10"),
        ("{{ item.a.b[1].c }}", "deep"),
        ("{{   item.n   }}", "3"),
        ("{{item.f}}", "0.5"),
        ("{{item.flag}}", "true"),
        ("{{item.none}}", "null"),
        ("{{item.list}}", '[1,"x"]'),
        ("{{item.obj}}", '{"k":"v","é":"ü"}'),
        ("{{item.obj.é}}", "ü"),
        ("{{item.with space}}", "ok"),
        ("{{item.emoji}}!", "🦀!"),
        ("{{ item.a.b[-1].c }}", "deep"),
        ("{{sample.output_tools[0].function.name}}", "lookup"),
        ("{{sample.output_tools[0].function.arguments}}", '{"q": 1}'),
        ("a {{item.n}} b {{item.n}} c", "a 3 b 3 c"),
        ("no variables {{", "no variables {{"),
        ("", ""),
    ],
)
def test_render(template: str, expected: str) -> None:
    assert parse_template(template).render(NS) == expected


@pytest.mark.parametrize(
    ("template", "reason"),
    [
        ("{{item.missing}}", "no key 'missing'"),
        ("{{item.a.b[5]}}", "out of range"),
        ("{{item.n.x}}", "int, not an object"),
        ("{{item.obj[0]}}", "not a list"),
        ("{{sample.output_tools[3].function}}", "out of range"),
    ],
)
def test_missing_variable_raises_variable_error(template: str, reason: str) -> None:
    with pytest.raises(VariableError, match=reason):
        parse_template(template).render(NS)


@pytest.mark.parametrize(
    "template", ["{{ }}", "{{ foo.bar }}", "{{ items.x }}", "{{item..x}}", "{{item.x.}}"]
)
def test_syntax_errors(template: str) -> None:
    with pytest.raises(TemplateSyntaxError):
        parse_template(template)


def test_missing_variable_is_a_flag_not_a_crash() -> None:
    result = Grader(string_check(reference="{{ item.answer.value }}")).run("x", {"answer": "plain"})
    assert result.reward == 0.0 and result.errors.invalid_variable_error
    assert "item.answer" in result.error_messages[0]


def test_output_json_missing_is_sample_parse_error() -> None:
    result = Grader(string_check(input="{{ sample.output_json.a }}")).run("not json", {"answer": "x"})
    assert result.errors.sample_parse_error and not result.errors.invalid_variable_error


def test_huge_strings_render() -> None:
    big = "x" * 5_000_000
    result = Grader(string_check("like")).run("needle" + big, {"answer": "needle"})
    assert result.reward == 1.0 and result.errors.truncated_observation_error


def test_huge_string_under_limit_is_not_truncated() -> None:
    big = "é" * 1_000_000
    result = Grader(string_check()).run(big, {"answer": big})
    assert result.reward == 1.0 and result.ok


def test_sample_forms() -> None:
    message = {
        "role": "assistant",
        "content": "42",
        "tool_calls": [{"function": {"name": "f", "arguments": "{}"}}],
    }
    assert make_sample(message).output_tools[0]["function"]["name"] == "f"
    completion = {"choices": [{"index": 0, "message": {"role": "assistant", "content": '{"a": 1}'}}]}
    assert make_sample(completion).output_json == {"a": 1}
    assert make_sample({"output_json": {"a": 1}}).output_text == '{"a": 1}'
    assert not make_sample("plain text").has_json
    assert make_sample("[1, 2]").output_json == [1, 2]
    with pytest.raises(TypeError):
        make_sample(42)  # type: ignore[arg-type]
