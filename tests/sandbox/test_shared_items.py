"""A GRPO group's item goes to the worker once per chunk, and still reaches every
call as if it were that call's own copy."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest

from rftgrade import Columns, Grader
from rftgrade._rawitem import RawItem
from rftgrade.sandbox import SandboxExecutor
from rftgrade.sandbox._protocol import share_items as _share_items
from rftgrade.sandbox._select import backend_class

from ..conftest import require_or_skip

WORKER = Path(__file__).resolve().parents[2] / "sandbox" / "worker.py"
spec = importlib.util.spec_from_file_location("rftgrade_worker_shared", WORKER)
assert spec and spec.loader
worker = importlib.util.module_from_spec(spec)
spec.loader.exec_module(worker)

BACKENDS = ["process", "bwrap", "docker"]

# Changes its item in every way a grader might, then checks that the item it got
# is the one the host sent: it never sees an earlier call's changes.
MUTATING = """
def grade(sample, item):
    text = sample["output_text"]
    answer = item.pop("answer")
    item["steps"].append("mine")
    item["meta"]["seen"] = text
    item["extra"] = object()  # cannot be compared with anything the host sent
    clean = item["steps"] == ["a", "mine"] and item["meta"] == {"seen": text}
    return 1.0 if answer == text and clean else 0.0
"""

# Whether this call got the very object the previous call got: only when the
# worker took the group's item once and handed it on unchanged.
SAME_OBJECT = """
last = None
def grade(sample, item):
    global last
    same, last = item is last, item
    return 1.0 if same else 0.0
"""


def _group_rows(groups: int, size: int) -> tuple[list[str], list[dict[str, Any]]]:
    samples, items = [], []
    for g in range(groups):
        item = {"answer": f"a{g}", "steps": ["a"], "meta": {}}
        for _ in range(size):
            samples.append(f"a{g}")
            items.append(item)  # one object per group, as a trainer holds it
    return samples, items


def _as_json_text(items: list[dict[str, Any]]) -> list[RawItem]:
    # What the server keeps for a /v1/grade body: each row's item as its own JSON text.
    return [RawItem(json.dumps(item).encode()) for item in items]


def test_a_chunk_carries_each_distinct_item_once() -> None:
    a, b = {"x": 1}, {"x": 1}  # equal but distinct objects stay distinct
    message: dict[str, Any] = {}
    assert _share_items([a, a, b, a], message) == [a, b]
    assert message["item_of"] == [0, 0, 1, 0]

    one, two = b'{"x": 1}', b'{"x": 2}'
    texts = [RawItem(one), RawItem(memoryview(one)), RawItem(two), RawItem(bytearray(one))]
    message = {}
    unique = _share_items(texts, message)
    assert [bytes(i.data) for i in unique] == [one, two]
    assert message["item_of"] == [0, 0, 1, 0]

    # One RawItem object for many rows (a `groups` body): its text is copied once.
    big = RawItem(memoryview(b'{"pad": "' + b"x" * 100_000 + b'"}'))
    message = {}
    assert _share_items([big] * 1000, message) == [big] and message["item_of"] == [0] * 1000

    # Trainers send a prompt's samples together: with no two neighbours alike the
    # chunk goes as it is, without keying every item.
    message = {}
    apart = [RawItem(one), RawItem(two), RawItem(one)]
    assert _share_items(apart, message) is apart and "item_of" not in message

    message = {}
    distinct = [{"x": 1}, {"x": 1}]
    assert _share_items(distinct, message) is distinct and "item_of" not in message

    message = {}
    assert _share_items([a, b, a], message) == [a, b] and message["item_of"] == [0, 1, 0]


def test_the_worker_copies_a_shared_item_afresh_only_once_it_has_changed() -> None:
    shared = worker.SharedItems([{"k": [1]}, {"k": [2]}], [0, 0, 1, 0])
    first = shared.take(0)
    assert first == {"k": [1]} and shared.take(1) is first  # unchanged: handed on as is
    first["k"].append(9)
    assert shared.take(3) == {"k": [1]} and shared.take(3) is not first
    assert shared.take(2) == {"k": [2]}
    assert shared.take(7) == {}  # a reference the host never sent


@pytest.mark.parametrize("form", ["objects", "json_text"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_every_call_gets_the_item_the_host_sent(backend: str, form: str) -> None:
    require_or_skip(backend_class(backend).unavailable_reason() is None, f"the {backend} sandbox")
    samples, items = _group_rows(groups=40, size=16)
    column: list[Any] = _as_json_text(items) if form == "json_text" else items
    executor = SandboxExecutor(backend, workers=2)
    mutating = Grader({"type": "python", "name": "m", "source": MUTATING}, python=executor)
    same = Grader({"type": "python", "name": "s", "source": SAME_OBJECT}, python=executor)
    try:
        results = mutating.run_batch(Columns(samples, column))
        reused = same.run_batch(Columns(samples, column))
    finally:
        mutating.close()
        same.close()
    assert all(r.ok for r in results), [r.error_messages for r in results if not r.ok][:2]
    assert [r.reward for r in results] == [1.0] * len(samples)
    # The unchanged item really was shared: most calls got the previous call's object.
    assert sum(r.reward for r in reused) >= len(samples) * 0.8


def test_an_item_object_used_again_further_on_is_still_each_calls_own() -> None:
    # Not neighbours: a, b, c, a, b, c, ... (marshal alone would hand the worker one
    # object per item for all its rows).
    _, grouped = _group_rows(groups=3, size=20)
    items = [grouped[(i % 3) * 20] for i in range(60)]
    samples = [f"a{i % 3}" for i in range(60)]
    grader = Grader(
        {"type": "python", "name": "m", "source": MUTATING}, python=SandboxExecutor("process", workers=1)
    )
    try:
        assert [r.reward for r in grader.run_batch(Columns(samples, items))] == [1.0] * 60
    finally:
        grader.close()


@pytest.mark.parametrize("backend", ["process"])
def test_per_sample_isolation_shares_items_too(backend: str) -> None:
    samples, items = _group_rows(groups=3, size=4)
    grader = Grader(
        {"type": "python", "name": "m", "source": MUTATING, "isolation": "sample"},
        python=SandboxExecutor(backend, workers=1),
    )
    try:
        results = grader.run_batch(Columns(samples, items))
    finally:
        grader.close()
    assert [r.reward for r in results] == [1.0] * len(samples)
