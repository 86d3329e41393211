"""What the sandbox worker hands a grader and checks of what it returns.

Stdlib only (it runs inside the sandbox, beside ``worker.py``): the OpenAI sample
dict rebuilt from rftgrade's wire form, items shared by a chunk's samples, the
bounded stdout capture, reward checks and trimmed tracebacks.
"""

from __future__ import annotations

import io
import json
import marshal
import math
import sys
import traceback
from typing import Any

from _rftgrade_wire import MAX_DETAILS, MAX_STDOUT


class BoundedCapture(io.TextIOBase):
    """sys.stdout for the grader: keeps the first MAX_STDOUT characters, counts the rest."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.size = 0
        self.dropped = 0

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        text = str(text)
        room = MAX_STDOUT - self.size
        if room > 0:
            self.parts.append(text[:room])
            self.size += min(len(text), room)
        self.dropped += max(0, len(text) - max(room, 0))
        return len(text)

    def value(self) -> str:
        out = "".join(self.parts)
        if self.dropped:
            out += f"\n... [{self.dropped} more characters of output dropped]"
        return out


def trim_traceback(exc: BaseException) -> str:
    frames = traceback.extract_tb(exc.__traceback__)
    # Keep only the grader's own frames: the worker's are noise to its author.
    user = [f for f in frames if f.filename == "<grader>"] or frames[-3:]
    lines = traceback.format_list(user[-8:])
    text = "".join(lines) + "".join(traceback.format_exception_only(type(exc), exc))
    return text[-MAX_DETAILS:]


_JSON_HEADS = frozenset('{["-0123456789tfn')
_SPACE = frozenset(" \t\r\n")


# json.loads(text) without its three Python-level calls per sample: the C scanner
# itself. After strip() the text starts with a value and has nothing after it
# but that value, so "all of it scanned" is json.loads's "no extra data".
_scan_once = json.JSONDecoder().scan_once  # type: ignore[attr-defined]  # set in __init__, untyped


def _json_of(text: str) -> Any:
    """``output_json`` parsed from the text exactly as the host's ``Sample`` does, or ``{}``."""
    head = text[:1]
    if head in _JSON_HEADS or (head in _SPACE and text.lstrip()[:1] in _JSON_HEADS):
        stripped = text.strip()
        try:
            value, end = _scan_once(stripped, 0)
        except (StopIteration, ValueError, RecursionError):
            return {}
        if end == len(stripped):
            return value
    return {}


def expand_sample(wire: Any) -> Any:
    """Rebuild OpenAI's sample dict from rftgrade's compact wire form.

    The wire form is the model's text alone (the common case: ``output_json`` is
    parsed from it and ``choices`` is the one assistant message) or a dict marked
    ``_wire``. Mirrors ``rftgrade._sample.Sample.to_python_arg``; a contract test
    pins the two.
    """
    if type(wire) is str:
        text, tools, given = wire, [], {}
    elif isinstance(wire, dict) and "_wire" in wire:
        text, tools, given = wire.get("output_text", ""), wire.get("output_tools", []), wire
    else:
        return wire
    if "choices" in given:
        choices = given["choices"]
    else:
        message: dict[str, Any] = {"role": "assistant", "content": text}
        if tools:
            message["tool_calls"] = tools
        choices = [{"index": 0, "message": message, "finish_reason": "stop"}]
    audio = given.get("output_audio")
    return {
        "choices": choices,
        "output_text": text,
        "output_json": given["output_json"] if "output_json" in given else _json_of(text),
        "output_tools": tools,
        "output_audio": audio if audio is not None else {},
    }


def check_reward(value: Any) -> tuple[float | None, str | None]:
    if isinstance(value, bool):
        return float(value), None
    if isinstance(value, int):
        try:
            number = float(value)
        except OverflowError:
            return None, "grade() returned an int too large for a float"
    elif isinstance(value, float):
        number = value
    else:
        try:
            import numbers

            if isinstance(value, numbers.Real):
                number = float(value)
            else:
                raise TypeError
        except (TypeError, ValueError, OverflowError):
            text = repr(value) if len(repr(value)) < 200 else repr(value)[:200] + "..."
            return None, f"grade() must return a number, got {type(value).__name__}: {text}"
    if not math.isfinite(number):
        return None, f"grade() returned {number}; rewards must be finite"
    return number, None


class SharedItems:
    """Items shared by several samples of a chunk (a GRPO group's prompt), taken in
    turn: each call gets an item equal to the one the host sent, even when an
    earlier call changed it (``item.pop(...)``); a changed one is copied afresh."""

    def __init__(self, items: list[Any], item_of: list[int]) -> None:
        self.pristine = items
        self.item_of = item_of
        self.handed: list[Any] = [None] * len(items)

    def take(self, index: int) -> Any:
        if index >= len(self.item_of) or not 0 <= self.item_of[index] < len(self.pristine):
            return {}
        k = self.item_of[index]
        item = self.handed[k]
        if item is not None:
            try:
                # Checked before every use, not after: a grader may keep a reference
                # and change the item while grading a later sample.
                if item == self.pristine[k]:
                    return item
            except Exception:  # the grader put something into it that cannot compare
                pass
        item = self.handed[k] = marshal.loads(marshal.dumps(self.pristine[k]))
        return item


def load_grader(source: str) -> tuple[Any, dict[str, Any] | None]:
    """The grader's ``grade``, or ``None`` and the load error the host reports (with
    its line): a syntax error, an exception at import, a missing or wrong-arity ``grade``."""
    # A real module in sys.modules: pydantic, dataclasses and typing resolve a
    # grader's annotations through it (the seed's Stripe grader needs this).
    import types

    module = types.ModuleType("__grader__")
    sys.modules["__grader__"] = module
    namespace: dict[str, Any] = module.__dict__
    capture = BoundedCapture()
    old = sys.stdout
    sys.stdout = capture
    try:
        code = compile(source, "<grader>", "exec")
        exec(code, namespace)
    except SyntaxError as exc:
        return None, {
            "type": "SyntaxError",
            "line": exc.lineno,
            "details": f"line {exc.lineno}: {exc.msg}",
        }
    except BaseException as exc:  # the module body itself failed
        return None, {"type": type(exc).__name__, "details": trim_traceback(exc)}
    finally:
        sys.stdout = old
    grade = namespace.get("grade")
    if not callable(grade):
        return None, {
            "type": "MissingGrade",
            "details": "the source defines no callable `grade(sample, item)`",
        }
    code_obj = getattr(grade, "__code__", None)
    if code_obj is not None:
        positional = code_obj.co_argcount
        required = positional - len(grade.__defaults__ or ())
        has_var = bool(code_obj.co_flags & 0x04)
        if (positional < 2 and not has_var) or required > 2:
            return None, {
                "type": "WrongArity",
                "line": code_obj.co_firstlineno,
                "details": f"line {code_obj.co_firstlineno}: grade() takes {positional} positional "
                "argument(s); it must take exactly two: grade(sample, item)",
            }
    return grade, None
