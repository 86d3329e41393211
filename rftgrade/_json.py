"""JSON at rftgrade's boundaries (sandbox channel, server, trainer client).

orjson when it is installed and accepts the value, several times faster on the
thousands of rows of an RL step; the standard library otherwise. The fallback
writes ASCII (``\\uXXXX`` escapes), so a lone surrogate in a model's output or a
grader's stdout still makes valid JSON instead of an encoding error.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

try:
    import orjson
except ImportError:  # pragma: no cover - orjson ships with the sandbox and server extras
    orjson = None  # type: ignore[assignment]

__all__ = ["dumps", "encoded", "loads"]

_ENCODED: dict[int, Any] = {}
"""The value behind each :func:`encoded` fragment, for the standard library's encoder."""


def encoded(value: Any) -> Any:
    """``value``, a JSON constant that is never changed, encoded once for :func:`dumps`.

    A big answer repeats some parts in every row (a clean result's twenty error
    flags); orjson copies a pre-encoded fragment instead of encoding it again. Only
    for values that go straight to :func:`dumps`.
    """
    if orjson is None:  # pragma: no cover - orjson ships with the server extra
        return value
    fragment = orjson.Fragment(orjson.dumps(value))
    _ENCODED[id(fragment)] = (fragment, value)
    return fragment


def dumps(value: Any, default: Callable[[Any], Any] | None = None) -> bytes:
    """``value`` as UTF-8 JSON bytes."""
    if orjson is not None:
        try:
            return orjson.dumps(value, default=default)
        except TypeError:  # orjson.JSONEncodeError: lone surrogates, ints over 64 bits
            pass
    return json.dumps(value, default=_with_encoded(default)).encode("ascii")


def _with_encoded(default: Callable[[Any], Any] | None) -> Callable[[Any], Any]:
    def encode(value: Any) -> Any:
        known = _ENCODED.get(id(value))
        if known is not None and known[0] is value:
            return known[1]
        if default is None:
            raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")
        return default(value)

    return encode


def loads(data: bytes | str) -> Any:
    """Parse JSON; raises ``ValueError`` when it is not JSON."""
    if orjson is not None:
        try:
            return orjson.loads(data)
        except ValueError:  # e.g. an escaped lone surrogate, which the stdlib accepts
            pass
    return json.loads(data)
