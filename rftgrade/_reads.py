"""What a grader reads of the item and the sample, where it can be seen without running it.

Templates (``{{ item.reference.answer }}``) say it exactly; a python grader's
``grade(sample, item)`` says it when it indexes its arguments with constants
(``item["reference"]["answer"]``, ``item.get("bonus")``). Used to check a dataset
against a grader and to shape probe answers like the grader's expected output.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from typing import Any

from rftgrade._load import grader_to_dict
from rftgrade._specs import AnyGrader, PythonGrader, grader_parts
from rftgrade._template import parse_template

__all__ = ["ItemRead", "item_reads", "reads"]


@dataclass(frozen=True)
class ItemRead:
    """An item path the grader reads, and whether a missing value is an error."""

    path: tuple[str | int, ...]
    source: str
    """Where the read is: the template text, or ``python grader `name```."""
    required: bool = True


def item_reads(spec: AnyGrader) -> list[ItemRead]:
    """Every item path the grader's templates read, and those a python grader reads visibly."""
    return reads(spec, "item")


def reads(spec: AnyGrader, namespace: str) -> list[ItemRead]:
    """Every ``namespace`` (``item`` or ``sample``) path the grader reads, where it can be seen."""
    found: list[ItemRead] = []
    for part in grader_parts(spec):
        if isinstance(part, PythonGrader):
            found += _python_reads(part, 0 if namespace == "sample" else 1)
            continue
        for text in _strings(grader_to_dict(part)):
            if "{{" not in text:
                continue
            try:
                template = parse_template(text)
            except ValueError:
                continue  # validate reports the syntax
            for p in template.parts:
                if not isinstance(p, str) and p.namespace == namespace:
                    found.append(ItemRead(p.path, "{{ " + p.text.strip() + " }}"))
    unique: dict[tuple[Any, ...], ItemRead] = {}
    for read in found:
        key = (read.path, read.required)
        unique.setdefault(key, read)
    return list(unique.values())


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


def _python_reads(grader: PythonGrader, position: int) -> list[ItemRead]:
    try:
        tree = ast.parse(grader.source)
    except SyntaxError:
        return []
    param = None
    for node in tree.body:
        if (
            isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
            and node.name == "grade"
            and len(node.args.args) > position
        ):
            param = node.args.args[position].arg
    if param is None:
        return []
    where = f"python grader `{grader.name}`" if grader.name else "python grader"
    reads = []
    for sub in ast.walk(tree):
        path, required = _read_path(sub, param)
        if path:
            reads.append(ItemRead(path, where, required))
    # Keep only the longest chains: item["a"]["b"] also walks item["a"].
    longest = [
        r
        for r in reads
        if not any(o.path[: len(r.path)] == r.path and len(o.path) > len(r.path) for o in reads)
    ]
    return longest


def _read_path(node: ast.AST, param: str) -> tuple[tuple[str | int, ...], bool]:
    """The constant path of ``item["a"]["b"]`` or ``item.get("a")``; () if not such a read."""
    steps: list[str | int] = []
    required = True
    cur = node
    while True:
        if isinstance(cur, ast.Subscript) and isinstance(cur.slice, ast.Constant):
            key = cur.slice.value
            if not isinstance(key, (str, int)) or isinstance(key, bool):
                return (), True
            steps.append(key)
            cur = cur.value
        elif (
            isinstance(cur, ast.Call)
            and isinstance(cur.func, ast.Attribute)
            and cur.func.attr == "get"
            and cur.args
            and isinstance(cur.args[0], ast.Constant)
            and isinstance(cur.args[0].value, str)
        ):
            steps.append(cur.args[0].value)
            required = False  # .get() copes with a missing key: worth a warning, not an error
            cur = cur.func.value
        else:
            break
    if isinstance(cur, ast.Name) and cur.id == param and steps:
        return tuple(reversed(steps)), required
    return (), True
