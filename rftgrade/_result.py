"""Grading results in OpenAI's ``graders/run`` response shape.

:class:`GradeResult` is a light slotted object (a batch of 25,000 rewards should
not build 25,000 pydantic models); :meth:`GradeResult.to_dict` gives the exact
JSON of OpenAI's ``GraderRunResponse``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any, Generic, TypeVar, overload

from rftgrade._json import dumps, encoded

try:
    import orjson as _orjson
except ImportError:  # pragma: no cover - orjson ships with rftgrade
    _orjson = None  # type: ignore[assignment]

__all__ = ["ERROR_FLAGS", "GradeResult", "GraderErrors", "TokenUsage"]

T = TypeVar("T")

ERROR_FLAGS = (
    "formula_parse_error",
    "sample_parse_error",
    "truncated_observation_error",
    "unresponsive_reward_error",
    "invalid_variable_error",
    "other_error",
    "python_grader_server_error",
    "python_grader_server_error_type",
    "python_grader_runtime_error",
    "python_grader_runtime_error_details",
    "model_grader_server_error",
    "model_grader_refusal_error",
    "model_grader_parse_error",
    "model_grader_server_error_details",
)
"""The fourteen keys of ``metadata.errors``, in OpenAI's order."""

_BOOL_FLAGS = tuple(f for f in ERROR_FLAGS if not f.endswith(("_type", "_details")))


@dataclass(slots=True)
class GraderErrors:
    """``metadata.errors``: eleven boolean flags and three detail strings."""

    formula_parse_error: bool = False
    sample_parse_error: bool = False
    truncated_observation_error: bool = False
    unresponsive_reward_error: bool = False
    invalid_variable_error: bool = False
    other_error: bool = False
    python_grader_server_error: bool = False
    python_grader_server_error_type: str | None = None
    python_grader_runtime_error: bool = False
    python_grader_runtime_error_details: str | None = None
    model_grader_server_error: bool = False
    model_grader_refusal_error: bool = False
    model_grader_parse_error: bool = False
    model_grader_server_error_details: str | None = None

    @property
    def any(self) -> bool:
        """True when any boolean flag is set."""
        return any(getattr(self, f) for f in _BOOL_FLAGS)

    def raised(self) -> list[str]:
        """Names of the boolean flags that are set."""
        return [f for f in _BOOL_FLAGS if getattr(self, f)]

    def merge(self, other: GraderErrors) -> None:
        """OR ``other``'s flags into these (used by ``multi``); first details win."""
        for f in fields(self):
            mine, theirs = getattr(self, f.name), getattr(other, f.name)
            if isinstance(theirs, bool):
                setattr(self, f.name, mine or theirs)
            elif mine is None and theirs is not None:
                setattr(self, f.name, theirs)

    def to_dict(self) -> dict[str, Any]:
        # Not dataclasses.asdict: it deep-copies, and a 25,000-row response calls this 25,000 times.
        return {name: getattr(self, name) for name in ERROR_FLAGS}


@dataclass(slots=True)
class TokenUsage:
    """Token counts of a model grader's calls, as OpenAI reports them."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    cached_tokens: int = 0

    def add(self, other: TokenUsage) -> None:
        self.prompt_tokens += other.prompt_tokens
        self.completion_tokens += other.completion_tokens
        self.total_tokens += other.total_tokens
        self.cached_tokens += other.cached_tokens

    def to_dict(self) -> dict[str, int]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.total_tokens,
            "cached_tokens": self.cached_tokens,
        }


class _OnFirstUse(Generic[T]):
    """An attribute made by ``factory`` when first read, kept in the slot ``_<name>``."""

    def __init__(self, factory: Callable[[], T], doc: str) -> None:
        self.factory = factory
        self.__doc__ = doc
        self.slot = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self.slot = "_" + name

    @overload
    def __get__(self, obj: None, owner: type) -> _OnFirstUse[T]: ...
    @overload
    def __get__(self, obj: object, owner: type) -> T: ...
    def __get__(self, obj: object | None, owner: type) -> T | _OnFirstUse[T]:
        if obj is None:
            return self
        value: T | None = getattr(obj, self.slot)
        if value is None:
            value = self.factory()
            setattr(obj, self.slot, value)
        return value

    def __set__(self, obj: object, value: T) -> None:
        setattr(obj, self.slot, value)


class GradeResult:
    """The outcome of grading one ``(sample, item)``.

    A failure is never an exception: ``reward`` is 0 and ``errors`` says why, with a
    human-readable line per failure in ``error_messages``.

    ``errors``, ``scores``, ``sub_rewards``, ``token_usage_per_model`` and
    ``error_messages`` are created on first use: most results of a big batch are a
    clean reward, and five containers a row are what makes the garbage collector
    walk a 25,000-row batch again and again.
    """

    __slots__ = (
        "_error_messages",
        "_errors",
        "_scores",
        "_sub_rewards",
        "_token_usage_per_model",
        "execution_time",
        "name",
        "reward",
        "sampled_model_name",
        "token_usage",
        "type",
    )

    def __init__(
        self,
        reward: float,
        name: str,
        type: str,
        errors: GraderErrors | None = None,
        execution_time: float = 0.0,
        scores: dict[str, Any] | None = None,
        token_usage: TokenUsage | None = None,
        sampled_model_name: str | None = None,
        sub_rewards: dict[str, Any] | None = None,
        token_usage_per_model: dict[str, TokenUsage] | None = None,
        error_messages: list[str] | None = None,
    ) -> None:
        self.reward = reward
        self.name = name
        self.type = type
        self._errors = errors
        self.execution_time = execution_time
        self._scores = scores
        self.token_usage = token_usage
        self.sampled_model_name = sampled_model_name
        self._sub_rewards = sub_rewards
        self._token_usage_per_model = token_usage_per_model
        self._error_messages = error_messages

    errors: _OnFirstUse[GraderErrors] = _OnFirstUse(GraderErrors, "``metadata.errors``: the flags.")
    scores: _OnFirstUse[dict[str, Any]] = _OnFirstUse(dict, "``metadata.scores``: a grader's named values.")
    sub_rewards: _OnFirstUse[dict[str, Any]] = _OnFirstUse(dict, "each sub-grader's reward (``multi``).")
    token_usage_per_model: _OnFirstUse[dict[str, TokenUsage]] = _OnFirstUse(
        dict, "``model_grader_token_usage_per_model``."
    )
    error_messages: _OnFirstUse[list[str]] = _OnFirstUse(list, "One human-readable line per failure.")

    @property
    def ok(self) -> bool:
        """True when no error flag is set."""
        return self._errors is None or not self._errors.any

    def flags(self) -> list[str]:
        """Names of the error flags that are set (``[]`` for a clean result, cheaply)."""
        return self._errors.raised() if self._errors is not None else []

    def fail(self, flag: str, message: str, **details: str | None) -> GradeResult:
        """Mark this result failed with ``flag``; the reward becomes 0."""
        errors = self.errors
        setattr(errors, flag, True)
        for key, value in details.items():
            setattr(errors, key, value)
        self.error_messages.append(message)
        self.reward = 0.0
        return self

    def _key(self) -> tuple[Any, ...]:
        return (
            self.reward,
            self.name,
            self.type,
            self.errors,
            self.execution_time,
            self.scores,
            self.token_usage,
            self.sampled_model_name,
            self.sub_rewards,
            self.token_usage_per_model,
            self.error_messages,
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, GradeResult):
            return NotImplemented
        return self._key() == other._key()

    __hash__ = None  # type: ignore[assignment]  # mutable, like the dataclass it replaced

    def __repr__(self) -> str:
        flags = ", ".join(self._errors.raised()) if self._errors is not None else ""
        return (
            f"GradeResult(reward={self.reward!r}, name={self.name!r}, type={self.type!r}"
            + (f", errors=[{flags}]" if flags else "")
            + (f", scores={self._scores!r}" if self._scores else "")
            + (f", sub_rewards={self._sub_rewards!r}" if self._sub_rewards else "")
            + ")"
        )

    def to_dict(self) -> dict[str, Any]:
        """OpenAI's ``GraderRunResponse`` JSON (plus ``metadata.error_messages``)."""
        return self._as_dict(dict(_CLEAN))

    def to_answer(self) -> dict[str, Any]:
        """:meth:`to_dict` for :func:`rftgrade._json.dumps` straight away (the server's
        answers; the same JSON). Built for speed, as a 8,192-row answer builds 8,192 of
        them: a clean result's error flags and the empty objects are constants encoded
        once (shared, so never to be changed by the caller), and nothing is copied:
        two dicts a row, against six in :meth:`to_dict`."""
        reward = self.reward
        errors = self._errors
        messages = self._error_messages
        per_model = self._token_usage_per_model
        metadata = {
            "name": self.name,
            "type": self.type,
            "errors": _CLEAN_ENCODED if errors is None else errors.to_dict(),
            "execution_time": self.execution_time,
            "scores": self._scores or _EMPTY_ENCODED,
            "token_usage": self.token_usage.total_tokens if self.token_usage else None,
            "sampled_model_name": self.sampled_model_name,
        }
        if messages:
            metadata["error_messages"] = messages
        return {
            "reward": reward if math.isfinite(reward) else 0.0,
            "metadata": metadata,
            "sub_rewards": self._sub_rewards or _EMPTY_ENCODED,
            "model_grader_token_usage_per_model": (
                {model: usage.to_dict() for model, usage in per_model.items()}
                if per_model
                else _EMPTY_ENCODED
            ),
        }

    def to_answer_json(self) -> bytes:
        """:meth:`to_answer` encoded: the same bytes as ``dumps(result.to_answer())``.

        A file of results (``rftgrade grade``) encodes one line per row. A clean
        result with nothing but a reward, a time and its scores (the common row) is
        its grader's encoded constant parts around three encoded values: a third of
        the cost of building and encoding the dicts.
        """
        if (
            self._errors is None
            and not self._error_messages
            and not self._sub_rewards
            and not self._token_usage_per_model
            and self.token_usage is None
            and self.sampled_model_name is None
            and math.isfinite(self.reward)
            and _orjson is not None
        ):
            parts = _parts_for(self.name, self.type)
        else:
            parts = None
        if parts is not None:
            try:
                return b"".join(
                    (
                        parts[0],
                        _orjson.dumps(self.reward),
                        parts[1],
                        _orjson.dumps(self.execution_time),
                        parts[2],
                        _orjson.dumps(self._scores or {}),
                        parts[3],
                    )
                )
            except TypeError:  # a score orjson cannot encode: the general path says how
                pass
        return dumps(self.to_answer())

    def _as_dict(self, clean_errors: dict[str, Any]) -> dict[str, Any]:
        reward = self.reward if math.isfinite(self.reward) else 0.0
        metadata: dict[str, Any] = {
            "name": self.name,
            "type": self.type,
            "errors": self._errors.to_dict() if self._errors is not None else clean_errors,
            "execution_time": self.execution_time,
            "scores": self._scores if self._scores is not None else {},
            # The SDK types token_usage as an integer (GraderRunResponse.metadata.token_usage: int | None);
            # the per-model breakdown is model_grader_token_usage_per_model.
            "token_usage": self.token_usage.total_tokens if self.token_usage else None,
            "sampled_model_name": self.sampled_model_name,
        }
        if self._error_messages:
            metadata["error_messages"] = list(self._error_messages)
        return {
            "reward": reward,
            "metadata": metadata,
            "sub_rewards": self._sub_rewards if self._sub_rewards is not None else {},
            "model_grader_token_usage_per_model": {
                model: usage.to_dict() for model, usage in (self._token_usage_per_model or {}).items()
            },
        }


_CLEAN = GraderErrors().to_dict()
_CLEAN_ENCODED = encoded(_CLEAN)
_EMPTY_ENCODED = encoded({})

_LINE_PARTS: dict[tuple[str, str], tuple[bytes, bytes, bytes, bytes] | None] = {}
"""Each grader's constant parts of a clean answer (:meth:`GradeResult.to_answer_json`)."""


def _parts_for(name: str, kind: str) -> tuple[bytes, bytes, bytes, bytes] | None:
    key = (name, kind)
    if key in _LINE_PARTS:
        return _LINE_PARTS[key]
    if len(_LINE_PARTS) >= 4096:  # a process that sees many graders: no template for the rest
        return None
    parts = _LINE_PARTS[key] = _line_parts(name, kind)
    return parts


def _line_parts(name: str, kind: str) -> tuple[bytes, bytes, bytes, bytes] | None:
    """Cut from a real answer, so the parts cannot drift from to_answer's shape; checked
    on other values (``None``: this grader's answers are encoded the general way)."""
    marker = 123456.25
    scores = {"\u0001": 0}
    sample = dumps(GradeResult(marker, name, kind, None, marker * 2, scores).to_answer())
    try:
        head, rest = sample.split(dumps(marker), 1)
        middle, rest = rest.split(dumps(marker * 2), 1)
        between, tail = rest.split(dumps(scores), 1)
    except ValueError:
        return None
    check = GradeResult(0.5, name, kind, None, 0.25, {"k": [1]})
    built = b"".join((head, dumps(0.5), middle, dumps(0.25), between, dumps({"k": [1]}), tail))
    return (head, middle, between, tail) if built == dumps(check.to_answer()) else None
