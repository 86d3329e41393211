"""Contract between the host and the stdlib worker: the sample dict a grader sees."""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path
from typing import Any

import pytest

from rftgrade import make_sample

WORKER = Path(__file__).resolve().parents[2] / "sandbox" / "worker.py"
spec = importlib.util.spec_from_file_location("rftgrade_worker", WORKER)
assert spec and spec.loader
worker = importlib.util.module_from_spec(spec)
spec.loader.exec_module(worker)

SAMPLES: list[Any] = [
    "plain text",
    "",
    '  {"a": [1, 2]}  ',
    "[1, 2",
    "42",
    "-Infinity",
    "true",
    "é ü 🦀",
    {"output_text": "x", "output_tools": [{"function": {"name": "f", "arguments": "{}"}}]},
    {"output_json": {"k": "v"}},
    {"output_text": "not json", "output_json": {"given": True}},
    {
        "output_text": '{"a": 1}',
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "other"}}],
    },
    {"role": "assistant", "content": '{"b": 2}', "tool_calls": [{"function": {"name": "g"}}]},
    {"choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}}]},
    {"output_text": "a", "output_audio": {"data": "AAA", "transcript": "a"}},
    '\u3000{"a": 1}',  # a leading non-ASCII space: not a JSON document, for host and worker alike
    {"output_text": '\u3000{"a": 1}', "output_tools": [{"function": {"name": "f"}}]},
    " \n[1, 2]\u3000",
    # Where the worker's direct scanner call must agree with json.loads on the host:
    "[1, 2] x",
    '{"a": 1}}',
    '"a" "b"',
    "tru",
    "[1,]",
    "1e400",
    '{"a": 1}\t\n',
    "[" * 100_000,
]


@pytest.mark.parametrize("value", SAMPLES, ids=lambda v: repr(v)[:40])
def test_worker_rebuilds_exactly_the_python_arg(value: Any) -> None:
    sample = make_sample(value)
    assert worker.expand_sample(sample.to_wire()) == sample.to_python_arg()


def test_plain_dicts_pass_through() -> None:
    assert worker.expand_sample({"output_text": "x"}) == {"output_text": "x"}


def test_lone_surrogates_in_output_survive_the_channel() -> None:
    from rftgrade import Grader
    from rftgrade.sandbox import SandboxExecutor

    source = "def grade(sample, item):\n    print('bad \\udc80 text')\n    return 0.5\n"
    grader = Grader(
        {"type": "python", "name": "s", "source": source}, python=SandboxExecutor("process", workers=1)
    )
    try:
        (result,) = grader.run_batch([("x", {})])
    finally:
        grader.close()
    assert result.reward == 0.5 and result.ok


def _worker_constant(name: str) -> Any:
    """A constant of the worker's wire module, read without importing it (the worker
    runs inside the sandbox and can never import rftgrade, nor rftgrade it)."""
    tree = ast.parse((WORKER.parent / "_rftgrade_wire.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == name for t in node.targets):
            return ast.literal_eval(node.value)
    raise AssertionError(f"_rftgrade_wire.py defines no {name}")


def test_worker_speaks_the_hosts_protocol_version() -> None:
    from rftgrade.sandbox import _protocol

    assert _worker_constant("PROTOCOL_VERSION") == _protocol.PROTOCOL_VERSION
    assert _worker_constant("PROGRESS_SECONDS") == _protocol.PROGRESS_SECONDS
    # The worker really answers with it (what a stale image is refused by).
    assert worker.PROTOCOL_VERSION == _protocol.PROTOCOL_VERSION


def test_every_worker_module_ships_to_every_backend() -> None:
    from rftgrade.sandbox._backend import WORKER_FILES

    beside = {p.name for p in WORKER.parent.glob("*.py")}
    assert beside == set(WORKER_FILES), "a module beside worker.py that no backend ships (or one missing)"
    dockerfile = (WORKER.parent / "Dockerfile").read_text()
    assert "COPY worker.py _rftgrade_*.py /opt/rftgrade/" in dockerfile
