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

__all__ = ["dumps", "loads"]


def dumps(value: Any, default: Callable[[Any], Any] | None = None) -> bytes:
    """``value`` as UTF-8 JSON bytes."""
    if orjson is not None:
        try:
            return orjson.dumps(value, default=default)
        except TypeError:  # orjson.JSONEncodeError: lone surrogates, ints over 64 bits
            pass
    return json.dumps(value, default=default).encode("ascii")


def loads(data: bytes | str) -> Any:
    """Parse JSON; raises ``ValueError`` when it is not JSON."""
    if orjson is not None:
        try:
            return orjson.loads(data)
        except ValueError:  # e.g. an escaped lone surrogate, which the stdlib accepts
            pass
    return json.loads(data)
