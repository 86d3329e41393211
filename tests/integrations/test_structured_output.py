"""A job's ``response_format`` in TRL's launch file, as the regex vLLM samples under
(``vllm_structured_outputs_regex``); verl and OpenRLHF name what they cannot carry. (TRL's
own parser reading it and vLLM's grammar backend compiling it:
``test_real_trainers.py::test_exported_config_runs_in_verl_trl_openrlhf``.)"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from rftgrade.integrations.structured_output import StructuredOutputUnavailable, schema_regex

from .test_trainer_config import JOB, made

FORMAT: dict[str, Any] = JOB["method"]["reinforcement"]["response_format"]
SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "answer": {"type": "integer"},
        "steps": {"type": "array", "items": {"type": "string"}},
        "verdict": {"enum": ["pass", "fail"]},
        "note": {"anyOf": [{"type": "string"}, {"type": "null"}]},
    },
    "required": ["answer", "steps", "verdict", "note"],
    "additionalProperties": False,
}
RICHER = {"type": "json_schema", "json_schema": {"name": "r", "strict": True, "schema": SCHEMA}}

# What a model can write inside a JSON string under the regex: no control characters
# (those need a \u escape, which the regex leaves out) and none of C1 (U+007F-U+009F).
TEXT = st.text(st.characters(exclude_categories=["Cc", "Cs"]) | st.sampled_from('"\\\n\t'))


def matches(response_format: dict[str, Any], value: Any, separators: tuple[str, str]) -> bool:
    return (
        re.fullmatch(
            schema_regex(response_format), json.dumps(value, separators=separators, ensure_ascii=False)
        )
        is not None
    )


@given(reasoning=TEXT, answer=TEXT, spaced=st.booleans())
def test_every_answer_of_the_jobs_schema_is_allowed(reasoning: str, answer: str, spaced: bool) -> None:
    separators = (", ", ": ") if spaced else (",", ":")
    assert matches(FORMAT, {"reasoning": reasoning, "answer": answer}, separators)


@pytest.mark.parametrize(
    ("value", "allowed"),
    [
        ({"answer": 42, "steps": ["6 x 7"], "verdict": "pass", "note": None}, True),
        ({"answer": -3, "steps": [], "verdict": "fail", "note": "close"}, True),
        ({"answer": 4.5, "steps": [], "verdict": "fail", "note": None}, False),  # not an integer
        ({"answer": 42, "steps": [], "verdict": "maybe", "note": None}, False),  # not in the enum
        ({"answer": 42, "steps": [], "verdict": "pass"}, False),  # a required key missing
        ({"steps": [], "answer": 42, "verdict": "pass", "note": None}, False),  # keys out of order
        ({"answer": 42, "steps": [], "verdict": "pass", "note": None, "x": 1}, False),  # an extra key
    ],
)
def test_the_regex_is_the_schema(value: dict[str, Any], allowed: bool) -> None:
    assert matches(RICHER, value, (", ", ": ")) is allowed
    assert not matches(FORMAT, value, (", ", ": "))


def test_trl_yaml_carries_the_regex_and_says_where_it_holds(tmp_path: Path) -> None:
    result, out = made(tmp_path, "trl", JOB)
    assert result.exit_code == 0, result.output
    written = yaml.safe_load(out.read_text())
    assert written["vllm_structured_outputs_regex"] == schema_regex(FORMAT)
    assert "response_format -> vllm_structured_outputs_regex" in result.output
    assert "only with use_vllm: true" in result.output and "<think>" in result.output
    for trainer in ("verl", "openrlhf"):
        other, _ = made(tmp_path, trainer, JOB)
        assert "this trainer samples freely (TRL's launch file can constrain vLLM to it)" in other.output


def test_what_cannot_be_carried_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(StructuredOutputUnavailable, match="type 'json_object' has no JSON schema"):
        schema_regex({"type": "json_object"})
    with pytest.raises(StructuredOutputUnavailable, match=r"json_schema\.schema is missing"):
        schema_regex({"type": "json_schema", "json_schema": {"name": "x"}})
    job = json.loads(json.dumps(JOB))
    job["method"]["reinforcement"]["response_format"] = {"type": "json_object"}
    result, out = made(tmp_path, "trl", job)
    assert result.exit_code == 0 and "vllm_structured_outputs_regex" not in out.read_text()
    assert "TRL samples freely here" in result.output and "json_object" in result.output
    # Without the optional library: the file is still written, and the note says what to install.
    monkeypatch.setitem(sys.modules, "outlines_core", None)
    monkeypatch.setitem(sys.modules, "outlines_core.json_schema", None)
    result, out = made(tmp_path, "trl", JOB)
    assert result.exit_code == 0 and "vllm_structured_outputs_regex" not in out.read_text()
    assert "pip install 'rftgrade[structured]'" in result.output
