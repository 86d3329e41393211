"""Reading grader specs from JSON, dicts, files or models, with errors a person can act on.

pydantic's errors are rewritten here: each names the JSON path of the bad value
(``graders.email.operation``), says what is expected and, for a misspelling,
suggests the closest valid value (``neq`` -> "did you mean `ne`?").
"""

from __future__ import annotations

import difflib
import json
import re
import warnings
from pathlib import Path
from typing import Any, get_args

from pydantic import BaseModel, TypeAdapter, ValidationError

from rftgrade._exceptions import GraderValidationError, Problem
from rftgrade._forms import read_grader_source
from rftgrade._specs import GRADER_TYPES, AnyGrader, GraderSpec

__all__ = ["GraderLike", "grader_to_dict", "load_spec", "read_grader_data", "unknown_keys"]

GraderLike = AnyGrader | dict[str, Any] | str | Path
"""A grader as JSON text, a dict, a path to a ``.json`` file, or a spec model."""

_MODELS: dict[str, type[BaseModel]] = {
    model.model_fields["type"].default: model for model in get_args(AnyGrader)
}
"""Each grader type's model, by its ``type`` (the union's members)."""
_adapter: TypeAdapter[AnyGrader] | None = None


def _validate(data: Any) -> AnyGrader:
    """``data`` as its grader's model. A known ``type`` goes to its own model (only that
    model's validator is built: the models defer building); anything else to the union,
    whose errors say what ``type`` must be. The JSON paths of errors are the same either way."""
    model = _MODELS.get(data.get("type")) if isinstance(data, dict) else None  # type: ignore[arg-type]
    if model is not None:
        return model.model_validate(data)  # type: ignore[return-value]
    global _adapter
    if _adapter is None:
        _adapter = TypeAdapter(GraderSpec)
    return _adapter.validate_python(data)


def read_grader_data(source: GraderLike) -> dict[str, Any]:
    """Turn a path, JSON text or dict into the grader's JSON object.

    Every form of :func:`rftgrade._forms.read_grader_source` is accepted (a bare
    grader, a fine-tuning job or its blocks, an Evals criterion, a graders/run body).

    Raises:
        GraderValidationError: the file is missing, the text is not JSON, or it holds no grader.
    """
    if isinstance(source, BaseModel):
        return grader_to_dict(source)  # type: ignore[arg-type]
    return read_grader_source(source).data


def load_spec(source: GraderLike) -> AnyGrader:
    """Parse a grader spec from any :data:`GraderLike`.

    Raises:
        GraderValidationError: with every problem and its JSON path.
    """
    if isinstance(source, BaseModel) and type(source).__module__.startswith("rftgrade"):
        return source  # type: ignore[return-value]
    data = read_grader_data(source)
    surrogate = _lone_surrogate(data, "")
    if surrogate is not None:
        raise GraderValidationError(
            [
                Problem(
                    surrogate,
                    "holds a lone surrogate (an unpaired \\ud800-\\udfff escape), which is not text: "
                    "encode the string as valid UTF-8",
                    "schema",
                )
            ]
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("always", DeprecationWarning)
            spec = _validate(data)
    except ValidationError as exc:
        raise GraderValidationError(_problems(exc, data)) from None
    unknown = unknown_keys(spec)
    if unknown:
        raise GraderValidationError(unknown)
    return spec


def _lone_surrogate(data: Any, path: str) -> str | None:
    """The JSON path of the first string (key or value) that is not valid Unicode text."""
    if isinstance(data, str):
        try:
            data.encode("utf-8")
        except UnicodeEncodeError:
            return path or "<root>"
        return None
    if isinstance(data, dict):
        for key, value in data.items():
            sub = f"{path}.{key}" if path else str(key)
            if isinstance(key, str) and _lone_surrogate(key, sub) is not None:
                return sub
            found = _lone_surrogate(value, sub)
            if found is not None:
                return found
    elif isinstance(data, list):
        for index, value in enumerate(data):
            found = _lone_surrogate(value, f"{path}[{index}]")
            if found is not None:
                return found
    return None


def grader_to_dict(spec: AnyGrader) -> dict[str, Any]:
    """The spec as OpenAI grader JSON (``None`` fields dropped, unknown keys kept)."""
    return spec.model_dump(mode="json", exclude_none=True, by_alias=True)


def _walk(data: Any, loc: tuple[Any, ...]) -> tuple[str, Any, Any]:
    """Follow pydantic's ``loc`` through ``data``; return (json path, value, parent)."""
    path = ""
    node: Any = data
    parent: Any = None
    for step in loc:
        if isinstance(node, dict) and isinstance(step, str) and step in node:
            parent, node = node, node[step]
            path = f"{path}.{step}" if path else step
        elif isinstance(node, list) and isinstance(step, int) and 0 <= step < len(node):
            parent, node = node, node[step]
            path = f"{path}[{step}]"
        elif (
            isinstance(node, dict)
            and isinstance(step, str)
            and "[" not in step
            and step not in GRADER_TYPES
            and not step.startswith(("function-", "list[", "str", "tagged-union", "union"))
            and step not in ("input_text", "output_text", "input_image", "input_audio")
        ):
            # A missing field: report where it should be.
            parent, node = node, None
            path = f"{path}.{step}" if path else step
        # Other steps are pydantic's own (union members, discriminator tags): skip.
    return path, node, parent


def _expected_values(ctx: Any) -> list[str]:
    if not ctx:
        return []
    if "expected_tags" in ctx:
        return re.findall(r"'([^']*)'", str(ctx["expected_tags"]))
    if "expected" in ctx:
        return re.findall(r"'([^']*)'", str(ctx["expected"]))
    return []


def _suggest(value: Any, options: list[str]) -> str:
    if not isinstance(value, str) or not options:
        return ""
    close = difflib.get_close_matches(value, options, n=1, cutoff=0.5)
    if not close and value.lower() in {o.lower() for o in options}:
        close = [o for o in options if o.lower() == value.lower()]
    return f"; did you mean `{close[0]}`?" if close else ""


def _problems(exc: ValidationError, data: dict[str, Any]) -> list[Problem]:
    problems: list[Problem] = []
    seen: set[tuple[str, str]] = set()
    for err in exc.errors():
        path, value, parent = _walk(data, tuple(err["loc"]))
        kind = err["type"]
        ctx = err.get("ctx")
        if kind == "union_tag_invalid" and ctx:
            value = ctx.get("tag")
            path = f"{path}.type" if path else "type"
        if kind in ("literal_error", "union_tag_invalid"):
            options = _expected_values(ctx)
            field = path.rsplit(".", 1)[-1] if path else "type"
            message = f"{value!r} is not a valid {field}; valid values: {', '.join(options)}" + _suggest(
                value, options
            )
        elif kind == "union_tag_not_found":
            message = "missing `type`; set it to one of: " + ", ".join(GRADER_TYPES)
        elif kind == "missing":
            field = path.rsplit(".", 1)[-1]
            hint = ""
            if isinstance(parent, dict):
                extra = [k for k in parent if isinstance(k, str)]
                close = difflib.get_close_matches(field, extra, n=1, cutoff=0.75)
                if close:
                    hint = f" (found `{close[0]}`: a misspelling of `{field}`?)"
            message = f"required field `{field}` is missing{hint}"
        elif kind == "value_error":
            message = str(ctx.get("error") if ctx else err["msg"]).removeprefix("Value error, ")
            message = err["msg"].removeprefix("Value error, ") if not ctx else message
        else:
            message = (
                f"{err['msg']} (got {json.dumps(value)[:80] if _jsonable(value) else type(value).__name__})"
            )
        key = (path, message)
        if key not in seen:
            seen.add(key)
            problems.append(Problem(path, message))
    return _dedupe_union_noise(problems)


def _jsonable(value: Any) -> bool:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return False
    return True


def _dedupe_union_noise(problems: list[Problem]) -> list[Problem]:
    # A content block that fails every union member yields one error per member;
    # keep the first per path, which is the most specific.
    out: list[Problem] = []
    paths: set[str] = set()
    for problem in problems:
        if problem.path in paths and "valid values" not in problem.message:
            continue
        paths.add(problem.path)
        out.append(problem)
    return out


def unknown_keys(spec: BaseModel, path: str = "") -> list[Problem]:
    """Keys in the JSON that no OpenAI grader field has: each a problem with a "did you mean"."""
    out = []
    fields = set(type(spec).model_fields)
    for key in spec.model_extra or {}:
        close = difflib.get_close_matches(key, list(fields), n=1, cutoff=0.6)
        hint = f"; did you mean `{close[0]}`?" if close else f"; known keys: {', '.join(sorted(fields))}"
        where = f"{path}.{key}" if path else key
        out.append(Problem(where, f"unknown key `{key}` (OpenAI's API rejects it too){hint}"))
    for name in fields:
        value = getattr(spec, name)
        sub = f"{path}.{name}" if path else name
        if isinstance(value, BaseModel):
            out += unknown_keys(value, sub)
        elif isinstance(value, dict):
            for k, v in value.items():
                if isinstance(v, BaseModel):
                    out += unknown_keys(v, f"{sub}.{k}")
        elif isinstance(value, list):
            for i, v in enumerate(value):
                if isinstance(v, BaseModel):
                    out += unknown_keys(v, f"{sub}[{i}]")
    return out
