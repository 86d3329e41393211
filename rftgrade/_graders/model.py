"""``score_model`` and ``label_model``: render the prompt, ask a judge, parse its verdict.

Transport (HTTP servers, local GPU models, batching, retries, caching) lives in
the :class:`~rftgrade._executors.JudgeExecutor`; this module owns what OpenAI's
graders define: the prompt templates, the response schema, clamping to
``range``, label matching and the error flags.
"""

from __future__ import annotations

import contextlib
import json
import math
import re
import time
from collections.abc import Sequence
from typing import Any

from rftgrade._executors import JudgeReply, JudgeRequest
from rftgrade._graders.base import CompiledGrader, Row, Runtime, flag_variable_error
from rftgrade._result import GradeResult, TokenUsage
from rftgrade._specs import (
    InputAudio,
    InputImage,
    InputMessage,
    InputText,
    LabelModelGrader,
    OutputText,
    ScoreModelGrader,
)
from rftgrade._template import Template, VariableError, parse_template

__all__ = [
    "CompiledLabelModel",
    "CompiledScoreModel",
    "label_schema",
    "parse_label",
    "parse_score",
    "score_schema",
]

_STEPS = {
    "type": "array",
    "items": {
        "type": "object",
        "properties": {"description": {"type": "string"}, "conclusion": {"type": "string"}},
        "required": ["description", "conclusion"],
        "additionalProperties": False,
    },
}


def score_schema(lo: float, hi: float) -> dict[str, Any]:
    """The strict JSON schema a ``score_model`` judge answers with."""
    return {
        "type": "object",
        "properties": {
            "steps": _STEPS,
            "result": {"type": "number", "description": f"score in the inclusive range {lo} to {hi}"},
        },
        "required": ["steps", "result"],
        "additionalProperties": False,
    }


def label_schema(labels: Sequence[str]) -> dict[str, Any]:
    """The strict JSON schema a ``label_model`` judge answers with (an enum of labels)."""
    return {
        "type": "object",
        "properties": {"steps": _STEPS, "result": {"type": "string", "enum": list(labels)}},
        "required": ["steps", "result"],
        "additionalProperties": False,
    }


class _Part:
    __slots__ = ("extra", "kind", "template")

    def __init__(self, kind: str, template: Template, extra: dict[str, Any]) -> None:
        self.kind, self.template, self.extra = kind, template, extra


def _compile_messages(messages: list[InputMessage]) -> list[tuple[str, bool, list[_Part]]]:
    compiled: list[tuple[str, bool, list[_Part]]] = []
    for message in messages:
        content = message.content
        as_text = isinstance(content, str)
        parts_in = [content] if not isinstance(content, list) else content
        parts: list[_Part] = []
        for part in parts_in:
            if isinstance(part, str):
                parts.append(_Part("text", parse_template(part), {}))
            elif isinstance(part, (InputText, OutputText)):
                parts.append(_Part("text", parse_template(part.text), {}))
            elif isinstance(part, InputImage):
                parts.append(_Part("image", parse_template(part.image_url), {"detail": part.detail}))
            elif isinstance(part, InputAudio):
                parts.append(
                    _Part("audio", parse_template(part.input_audio.data), {"format": part.input_audio.format})
                )
        compiled.append((message.role, as_text, parts))
    return compiled


def _render_messages(compiled: list[tuple[str, bool, list[_Part]]], row: Row) -> tuple[dict[str, Any], ...]:
    out: list[dict[str, Any]] = []
    for role, as_text, parts in compiled:
        if as_text:
            out.append({"role": role, "content": parts[0].template.render(row.ns)})
            continue
        content: list[dict[str, Any]] = []
        for part in parts:
            value = part.template.render(row.ns)
            if part.kind == "text":
                content.append({"type": "text", "text": value})
            elif part.kind == "image":
                image: dict[str, Any] = {"url": value}
                if part.extra.get("detail"):
                    image["detail"] = part.extra["detail"]
                content.append({"type": "image_url", "image_url": image})
            else:
                content.append(
                    {"type": "input_audio", "input_audio": {"data": value, "format": part.extra["format"]}}
                )
        out.append({"role": role, "content": content})
    return tuple(out)


_JSON_START = re.compile(r"\{")


def _extract_json(text: str) -> Any:
    """The reply as JSON, or the first JSON object inside it with a ``result`` key."""
    stripped = text.strip()
    fenced = re.search(r"```(?:json)?\s*(.*?)```", stripped, re.DOTALL)
    candidates = [stripped] + ([fenced.group(1)] if fenced else [])
    for candidate in candidates:
        with contextlib.suppress(ValueError):
            return json.loads(candidate)
    decoder = json.JSONDecoder()
    for match in _JSON_START.finditer(stripped):
        try:
            value, _ = decoder.raw_decode(stripped, match.start())
        except ValueError:
            continue
        if isinstance(value, dict) and "result" in value:
            return value
    return None


def parse_score(text: str, lo: float, hi: float) -> tuple[float | None, dict[str, Any], str | None]:
    """Parse a ``score_model`` reply: ``(score clamped to [lo, hi], scores metadata, error)``."""
    data = _extract_json(text)
    raw: Any = data.get("result") if isinstance(data, dict) else data
    if isinstance(raw, str):
        with contextlib.suppress(ValueError):
            raw = float(raw.strip())
    if isinstance(raw, bool) or not isinstance(raw, (int, float)) or not math.isfinite(float(raw)):
        snippet = text.strip()[:200]
        return None, {}, f"the judge's reply has no numeric `result`: {snippet!r}"
    value = float(raw)
    meta: dict[str, Any] = {"raw_result": value}
    if isinstance(data, dict) and isinstance(data.get("steps"), list):
        meta["steps"] = data["steps"]
    return min(max(value, lo), hi), meta, None


def parse_label(text: str, labels: Sequence[str]) -> tuple[str | None, str | None]:
    """Parse a ``label_model`` reply into one of ``labels``: ``(label, error)``."""
    data = _extract_json(text)
    candidate: Any = None
    if isinstance(data, dict):
        candidate = data.get("result", data.get("label"))
    elif isinstance(data, str):
        candidate = data
    if candidate is None:
        candidate = text
    if not isinstance(candidate, str):
        return None, f"the judge's label is not a string: {candidate!r}"
    cleaned = candidate.strip().strip("\"'`.").strip()
    if cleaned in labels:
        return cleaned, None
    folded = {label.casefold(): label for label in labels}
    if cleaned.casefold() in folded:
        return folded[cleaned.casefold()], None
    # Free text: accept only when exactly one label appears as a whole word.
    found = [
        label
        for label in labels
        if re.search(rf"(?<![\w-]){re.escape(label)}(?![\w-])", cleaned, re.IGNORECASE)
    ]
    if len(found) == 1:
        return found[0], None
    return None, f"the judge's reply names no single label of {list(labels)}: {text.strip()[:200]!r}"


class _ModelGrader(CompiledGrader):
    is_sync = False
    kind: str = "score"

    def __init__(self, spec: ScoreModelGrader | LabelModelGrader) -> None:
        super().__init__(spec)
        self.model = spec.model
        self.messages = _compile_messages(spec.input)
        params = getattr(spec, "sampling_params", None)
        self.sampling_params = params.model_dump(exclude_none=True) if params is not None else {}

    def _request(self, messages: tuple[dict[str, Any], ...]) -> JudgeRequest:
        raise NotImplementedError

    def _apply(self, result: GradeResult, reply: JudgeReply) -> None:
        raise NotImplementedError

    async def grade_batch(self, rows: Sequence[Row], runtime: Runtime) -> list[GradeResult]:
        results = [self.new_result() for _ in rows]
        pending: list[tuple[GradeResult, JudgeRequest]] = []
        for row, result in zip(rows, results, strict=True):
            try:
                messages = _render_messages(self.messages, row)
            except VariableError as exc:
                flag_variable_error(exc, row, result)
                continue
            pending.append((result, self._request(messages)))
        judge = runtime.judge
        if judge is None:
            for result, _ in pending:
                result.fail(
                    "model_grader_server_error",
                    f"no judge backend is configured for model {self.model!r}",
                    model_grader_server_error_details="judge_unavailable: configure a model "
                    "backend (OPENAI_BASE_URL / rftgrade models config)",
                )
            return results
        start = time.perf_counter()
        try:
            replies = await judge.judge([request for _, request in pending])
        except Exception as exc:  # a backend bug must not sink the batch
            replies = [JudgeReply(server_error=f"{type(exc).__name__}: {exc}") for _ in pending]
        elapsed = (time.perf_counter() - start) / max(len(pending), 1)
        for (result, _), reply in zip(pending, replies, strict=True):
            result.execution_time = elapsed
            result.sampled_model_name = reply.model or self.model
            if reply.usage is not None:
                result.token_usage = reply.usage
                usage = TokenUsage()
                usage.add(reply.usage)
                result.token_usage_per_model[result.sampled_model_name] = usage
            if reply.server_error is not None:
                result.fail(
                    "model_grader_server_error",
                    f"judge failed: {reply.server_error}",
                    model_grader_server_error_details=reply.server_error,
                )
            elif reply.refusal:
                result.fail("model_grader_refusal_error", f"the judge refused: {reply.refusal}")
            else:
                self._apply(result, reply)
        return results


class CompiledScoreModel(_ModelGrader):
    def __init__(self, spec: ScoreModelGrader) -> None:
        super().__init__(spec)
        lo, hi = spec.range if spec.range is not None else (0.0, 1.0)
        self.range = (float(lo), float(hi))
        self.schema = score_schema(*self.range)

    def _request(self, messages: tuple[dict[str, Any], ...]) -> JudgeRequest:
        return JudgeRequest(
            model=self.model,
            messages=messages,
            kind="score",
            sampling_params=self.sampling_params,
            response_schema=self.schema,
            score_range=self.range,
        )

    def _apply(self, result: GradeResult, reply: JudgeReply) -> None:
        lo, hi = self.range
        if reply.expected_score is not None and math.isfinite(reply.expected_score):
            result.reward = min(max(reply.expected_score, lo), hi)
            result.scores["expected_score"] = reply.expected_score
            return
        score, meta, error = parse_score(reply.text or "", lo, hi)
        result.scores.update(meta)
        if error is not None or score is None:
            result.fail("model_grader_parse_error", error or "unparseable judge reply")
        else:
            result.reward = score


class CompiledLabelModel(_ModelGrader):
    kind = "label"

    def __init__(self, spec: LabelModelGrader) -> None:
        super().__init__(spec)
        self.labels = tuple(spec.labels)
        self.passing = frozenset(spec.passing_labels)
        self.schema = label_schema(self.labels)

    def _request(self, messages: tuple[dict[str, Any], ...]) -> JudgeRequest:
        return JudgeRequest(
            model=self.model,
            messages=messages,
            kind="label",
            sampling_params=self.sampling_params,
            response_schema=self.schema,
            labels=self.labels,
        )

    def _apply(self, result: GradeResult, reply: JudgeReply) -> None:
        label, error = parse_label(reply.text or "", self.labels)
        if reply.label_probabilities:
            result.scores["label_probabilities"] = reply.label_probabilities
        if error is not None or label is None:
            result.fail("model_grader_parse_error", error or "unparseable judge reply")
            return
        result.scores["label"] = label
        result.reward = 1.0 if label in self.passing else 0.0
