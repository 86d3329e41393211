"""``rftgrade eval`` of a function-calling dataset: the calls a reply holds reach the
grader as ``sample.output_tools``, whether the endpoint parsed them or left them in the
text (an endpoint without a tool parser), as the trainer adapters read them."""

from __future__ import annotations

from pathlib import Path

import pytest

from rftgrade.testing.fake_model import FakeModelServer

from .helpers import lines, load, rft_row, run_eval, write_data

TOOLS = [{"type": "function", "function": {"name": "submit", "parameters": {"type": "object"}}}]
CALLED = {
    "type": "string_check",
    "name": "called",
    "input": "{{ sample.output_tools[0].function.name }}:{{ sample.output_tools[0].function.arguments }}",
    "reference": 'submit:{"answer": "{{ item.reference_answer }}"}',
    "operation": "eq",
}


def test_calls_in_the_reply_text_are_output_tools(
    server: FakeModelServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("RFTGRADE_TOOL_CALLS", raising=False)
    rows = [rft_row("a1", "tool", tools=TOOLS), rft_row("a2", "tool-text", tools=TOOLS)]
    data = write_data(tmp_path / "data.jsonl", rows)
    out = tmp_path / "out"
    done = run_eval(tmp_path, CALLED, data, out, "-n", "2", "--base-url", server.base_url)
    assert done.returncode == 0, done.stderr
    by_row = {r["row"]: r for r in load(out)["per_row"]}
    assert by_row[0]["rewards"] == [1.0, 1.0]  # the endpoint's own tool_calls
    assert by_row[1]["rewards"] == [1.0, 1.0]  # read from the text, its reasoning cut
    assert load(out)["tool_calls"] == {"mode": "parse", "by_endpoint": 2, "from_text": 2}
    assert "2 samples wrote their tool calls in the text" in (out / "summary.md").read_text()
    record = next(r for r in lines(out) if r["row"] == 1)
    assert record["sample"]["output_text"] == ""
    assert record["sample"]["choices"][0]["message"]["content"].startswith(
        "<think>"
    )  # as the endpoint gave it

    # Kept as text, the call in the text is not one; the endpoint's own still is.
    monkeypatch.setenv("RFTGRADE_TOOL_CALLS", "keep")
    kept = tmp_path / "kept"
    done = run_eval(tmp_path, CALLED, data, kept, "-n", "2", "--base-url", server.base_url)
    assert done.returncode == 0, done.stderr
    by_row = {r["row"]: r for r in load(kept)["per_row"]}
    assert by_row[0]["rewards"] == [1.0, 1.0] and by_row[1]["rewards"] == [0.0, 0.0]
    assert load(kept)["tool_calls"] == {"mode": "keep", "by_endpoint": 2, "from_text": 0}
    # Samples made one way are not regraded the other way from the same --out.
    again = run_eval(
        tmp_path, CALLED, data, kept, "-n", "2", "--base-url", server.base_url, "--tool-calls", "parse"
    )
    assert again.returncode != 0 and "tool_calls='keep'" in again.stderr

    bad = run_eval(tmp_path, CALLED, data, tmp_path / "bad", "--tool-calls", "hermes")
    assert (
        bad.returncode == 2
        and "--tool-calls (or RFTGRADE_TOOL_CALLS) is 'hermes'; use parse or keep" in bad.stderr
    )


def test_an_xml_call_left_in_the_reply_is_typed_by_the_requests_tools() -> None:
    # Qwen3.5's XML values are text; the trainer adapters type them by the row's tools,
    # and eval by the same tools, sent with the request.
    from rftgrade.evaluate import build_sample

    tools = [
        {
            "type": "function",
            "function": {"name": "book", "parameters": {"properties": {"nights": {"type": "integer"}}}},
        }
    ]
    content = "<tool_call>\n<function=book>\n<parameter=nights>\n3\n</parameter>\n</function>\n</tool_call>"
    response = {"choices": [{"index": 0, "message": {"role": "assistant", "content": content}}]}
    typed = build_sample(response, tools=tools)["output_tools"][0]["function"]["arguments"]
    untyped = build_sample(response)["output_tools"][0]["function"]["arguments"]
    assert (typed, untyped) == ('{"nights": 3}', '{"nights": "3"}')
