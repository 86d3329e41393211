"""The ``sample`` namespace: what graders see of one model output.

A caller passes either the model's text or a sample dict (OpenAI's
``{"output_text", "output_json", "output_tools", "choices", "output_audio"}``, a
Chat Completions message, or a Chat Completions response with ``choices``); both
are normalised here once, before any grader runs.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["Sample", "SampleLike", "make_sample"]

_MISSING: Any = object()
_LAZY: Any = object()


class _Namespace(dict[str, Any]):
    """``sample`` for templates; ``output_json`` and ``choices`` are built only if a template reads them."""

    def __init__(self, sample: Sample) -> None:
        super().__init__(output_text=sample.output_text, output_tools=sample.output_tools)
        if sample.output_audio is not None:
            self["output_audio"] = sample.output_audio
        self._sample = sample

    def _resolve(self, key: object) -> None:
        if dict.__contains__(self, key):
            return
        if key == "output_json" and self._sample.has_json:
            self["output_json"] = self._sample.output_json
        elif key == "choices":
            self["choices"] = self._sample.choices

    def __contains__(self, key: object) -> bool:
        self._resolve(key)
        return dict.__contains__(self, key)

    def __missing__(self, key: str) -> Any:
        self._resolve(key)
        if dict.__contains__(self, key):
            return dict.__getitem__(self, key)
        raise KeyError(key)


_SPACE = frozenset(" \t\r\n")
_JSON_HEADS = frozenset('{["-0123456789tfn')


class Sample:
    """One model output, normalised.

    ``output_json`` parsed from the text is parsed lazily, on first use: a python
    grader's sandbox re-derives it on its side, so the host never pays for it.
    """

    __slots__ = (
        "_choices",
        "_json",
        "default_choices",
        "json_from_text",
        "output_audio",
        "output_text",
        "output_tools",
    )

    def __init__(
        self,
        output_text: str,
        output_json: Any = _MISSING,
        output_tools: list[Any] | None = None,
        choices: list[Any] | None = None,
        output_audio: Any = None,
        *,
        json_from_text: bool = False,
        default_choices: bool = False,
    ) -> None:
        self.output_text = output_text
        self._json = output_json
        self.output_tools = output_tools if output_tools is not None else []
        self._choices = choices
        self.output_audio = output_audio
        self.json_from_text = json_from_text
        """``output_json`` comes from ``output_text`` (so a receiver can re-derive it)."""
        self.default_choices = default_choices
        """``choices`` is the single assistant message built from the text and tools."""

    @property
    def choices(self) -> list[Any]:
        if self._choices is None:
            message: dict[str, Any] = {"role": "assistant", "content": self.output_text}
            if self.output_tools:
                message["tool_calls"] = self.output_tools
            self._choices = [_choice(message)] if self.default_choices else []
        return self._choices

    @property
    def output_json(self) -> Any:
        if self._json is _LAZY:
            self._json = _parse_json(self.output_text)
        return self._json

    @property
    def has_json(self) -> bool:
        """Whether ``output_json`` is available (the text parsed, or the caller gave it)."""
        return self.output_json is not _MISSING

    def namespace(self) -> dict[str, Any]:
        """The ``sample`` mapping templates read (``output_json`` resolved on first lookup)."""
        return _Namespace(self)

    def to_python_arg(self) -> dict[str, Any]:
        """The ``sample`` dict passed to ``grade(sample, item)``: OpenAI's documented shape."""
        return {
            "choices": self.choices,
            "output_text": self.output_text,
            "output_json": self.output_json if self.has_json else {},
            "output_tools": self.output_tools,
            "output_audio": self.output_audio if self.output_audio is not None else {},
        }

    def to_wire(self) -> str | dict[str, Any]:
        """A compact form of :meth:`to_python_arg` for the sandbox worker.

        What the worker can re-derive from the text (``output_json`` parsed from it,
        the default ``choices``) is left out; a sample that is only its text travels
        as that string. ``sandbox/worker.py``'s ``expand_sample`` rebuilds exactly
        :meth:`to_python_arg` (pinned by a contract test).
        """
        if (
            self.json_from_text
            and self.default_choices
            and not self.output_tools
            and self.output_audio is None
        ):
            return self.output_text
        wire: dict[str, Any] = {"_wire": 1, "output_text": self.output_text}
        if self.output_tools:
            wire["output_tools"] = self.output_tools
        if self.output_audio is not None:
            wire["output_audio"] = self.output_audio
        if not self.json_from_text:
            wire["output_json"] = self.output_json if self.has_json else {}
        if not self.default_choices:
            wire["choices"] = self.choices
        return wire


SampleLike = str | dict[str, Any] | Sample
"""What a caller may pass as a sample."""


def _parse_json(text: str) -> Any:
    # Only text that looks like a JSON document; `json.loads("NaN")` etc. would surprise.
    # The first-character test keeps plain prose (most samples) off the JSON parser.
    head = text[:1] if text[:1] not in _SPACE else text.lstrip()[:1]
    if not head or head not in _JSON_HEADS:
        return _MISSING
    stripped = text.strip()
    try:
        return json.loads(stripped)
    except (ValueError, RecursionError):
        return _MISSING


def _content_text(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = []
        for part in content:
            if isinstance(part, dict) and isinstance(part.get("text"), str):
                texts.append(part["text"])
            elif isinstance(part, str):
                texts.append(part)
        return "".join(texts)
    return json.dumps(content, ensure_ascii=False)


def _choice(message: dict[str, Any]) -> dict[str, Any]:
    return {"index": 0, "message": message, "finish_reason": "stop"}


def make_sample(value: SampleLike) -> Sample:
    """Normalise a model output (text or sample dict) into a :class:`Sample`.

    Raises:
        TypeError: ``value`` is neither a string nor a dict.
    """
    if isinstance(value, Sample):
        return value
    if isinstance(value, str):
        return Sample(
            output_text=value,
            output_json=_LAZY,
            json_from_text=True,
            default_choices=True,
        )
    if not isinstance(value, dict):
        raise TypeError(f"a sample must be the model's text or a sample dict, not {type(value).__name__}")
    if "output_text" in value or "output_json" in value or "output_tools" in value:
        text = value.get("output_text")
        if text is None and "output_json" in value:
            text = json.dumps(value["output_json"], ensure_ascii=False)
        text = _content_text(text)
        out_json = value.get("output_json", _LAZY)
        tools = list(value.get("output_tools") or [])
        given_choices = list(value.get("choices") or [])
        choices = given_choices or None
        return Sample(
            text,
            out_json,
            tools,
            choices,
            value.get("output_audio"),
            json_from_text="output_json" not in value,
            default_choices=not given_choices,
        )
    if "choices" in value and isinstance(value["choices"], list):
        choices = value["choices"]
        message = (choices[0] or {}).get("message", {}) if choices else {}
        return _from_message(message if isinstance(message, dict) else {}, choices)
    if "content" in value or "tool_calls" in value:
        return _from_message(value, None)
    raise TypeError(
        "a sample dict needs `output_text` (or `output_json`/`output_tools`), `choices`, "
        f"or a chat message with `content`; got keys {sorted(value)[:8]}"
    )


def _from_message(message: dict[str, Any], choices: list[Any] | None) -> Sample:
    text = _content_text(message.get("content"))
    tools = list(message.get("tool_calls") or [])
    return Sample(
        output_text=text,
        output_json=_LAZY,
        output_tools=tools,
        choices=choices if choices is not None else [_choice(message)],
        output_audio=message.get("audio"),
        json_from_text=True,
    )
