"""``multi.calculate_output``: a small arithmetic language, parsed and evaluated safely.

The grammar is OpenAI's: numbers, the sub-graders' keys, ``+ - * / ^``,
parentheses and the functions ``min max abs floor ceil exp sqrt log``. The text
is parsed with Python's own parser (``ast``, after mapping ``^`` to ``**`` so that
power binds tighter than ``*`` and is right-associative, as in mathematics), then
checked node by node against a whitelist and compiled to closures. Nothing is
ever passed to ``eval``: a name that is not a key, an attribute, a subscript, a
string or a keyword argument is a :class:`FormulaError` at validation time.
"""

from __future__ import annotations

import ast
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

__all__ = ["FUNCTIONS", "Formula", "FormulaError", "FormulaRuntimeError", "parse_formula"]

MAX_LENGTH = 10_000
MAX_DEPTH = 64


class FormulaError(ValueError):
    """``calculate_output`` is not a valid formula (a ``formula_parse_error``)."""


class FormulaRuntimeError(ArithmeticError):
    """The formula could not be evaluated for one sample (division by zero, overflow...)."""


def _log(x: float, base: float | None = None) -> float:
    return math.log(x) if base is None else math.log(x, base)


FUNCTIONS: dict[str, tuple[Callable[..., float], int, int]] = {
    # name: (function, min args, max args)
    "min": (min, 1, 64),
    "max": (max, 1, 64),
    "abs": (abs, 1, 1),
    "floor": (lambda x: float(math.floor(x)), 1, 1),
    "ceil": (lambda x: float(math.ceil(x)), 1, 1),
    "exp": (math.exp, 1, 1),
    "sqrt": (math.sqrt, 1, 1),
    "log": (_log, 1, 2),
}

_Env = Mapping[str, float]
_Node = Callable[[_Env], float]


def _pow(a: float, b: float) -> float:
    result: float | complex = a**b
    if isinstance(result, complex):
        raise FormulaRuntimeError(f"{a} ^ {b} is not a real number")
    return result


def _div(a: float, b: float) -> float:
    if b == 0:
        raise FormulaRuntimeError("division by zero")
    return a / b


_BINOPS: dict[type[ast.operator], tuple[str, Callable[[float, float], float]]] = {
    ast.Add: ("+", lambda a, b: a + b),
    ast.Sub: ("-", lambda a, b: a - b),
    ast.Mult: ("*", lambda a, b: a * b),
    ast.Div: ("/", _div),
    ast.Pow: ("^", _pow),
}


@dataclass(frozen=True)
class Formula:
    """A compiled formula; call :meth:`evaluate` with the sub-graders' rewards."""

    source: str
    variables: frozenset[str]
    _fn: _Node

    def evaluate(self, values: _Env) -> float:
        """Evaluate with ``values`` (key -> reward).

        Raises:
            FormulaRuntimeError: division by zero, a math domain error, overflow,
                or a non-finite result.
        """
        try:
            result = float(self._fn(values))
        except FormulaRuntimeError:
            raise
        except ZeroDivisionError as exc:
            raise FormulaRuntimeError("division by zero") from exc
        except (OverflowError, ValueError, TypeError) as exc:
            raise FormulaRuntimeError(f"{type(exc).__name__}: {exc}") from exc
        if not math.isfinite(result):
            raise FormulaRuntimeError(f"the formula evaluated to {result}")
        return result


def parse_formula(source: str, keys: set[str] | frozenset[str]) -> Formula:
    """Parse and check ``source`` against the sub-grader ``keys``.

    Raises:
        FormulaError: with a message naming the offending token and the allowed ones.
    """
    if not isinstance(source, str) or not source.strip():
        raise FormulaError("calculate_output is empty; write e.g. `(name + email) / 2`")
    if len(source) > MAX_LENGTH:
        raise FormulaError(f"calculate_output is {len(source)} characters; the limit is {MAX_LENGTH}")
    if source.count("(") > MAX_DEPTH * 4:
        raise FormulaError(f"calculate_output nests too deeply (limit {MAX_DEPTH})")
    if "**" in source:
        raise FormulaError("use `^` for powers, e.g. `score ^ 2` (`**` is not part of the grammar)")
    try:
        tree = ast.parse(source.replace("^", "**").strip(), mode="eval")
    except SyntaxError as exc:
        where = f" at column {exc.offset}" if exc.offset else ""
        raise FormulaError(f"cannot parse calculate_output{where}: {exc.msg}") from None
    except (RecursionError, MemoryError, ValueError):
        raise FormulaError(f"calculate_output nests too deeply (limit {MAX_DEPTH})") from None
    used: set[str] = set()
    fn = _compile(tree.body, frozenset(keys), used, 0)
    return Formula(source=source, variables=frozenset(used), _fn=fn)


def _compile(node: ast.AST, keys: frozenset[str], used: set[str], depth: int) -> _Node:
    if depth > MAX_DEPTH:
        raise FormulaError(f"calculate_output nests too deeply (limit {MAX_DEPTH})")
    d = depth + 1
    if isinstance(node, ast.Constant):
        value = node.value
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise FormulaError(f"{value!r} is not allowed; only numbers and grader keys are")
        number = float(value)
        if not math.isfinite(number):
            raise FormulaError(f"the number {value!r} is too large")
        return lambda env: number
    if isinstance(node, ast.Name):
        name = node.id
        if name not in keys:
            hint = f"; the grader keys are: {', '.join(sorted(keys))}" if keys else ""
            if name in FUNCTIONS:
                raise FormulaError(f"{name} is a function; call it, e.g. {name}(a, b)")
            raise FormulaError(f"unknown variable {name!r}{hint}")
        used.add(name)
        return lambda env: float(env[name])
    if isinstance(node, ast.BinOp):
        op = _BINOPS.get(type(node.op))
        if op is None:
            raise FormulaError(f"operator {type(node.op).__name__} is not allowed; use + - * / ^")
        impl = op[1]
        left, right = _compile(node.left, keys, used, d), _compile(node.right, keys, used, d)
        return lambda env: impl(left(env), right(env))
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        inner = _compile(node.operand, keys, used, d)
        if isinstance(node.op, ast.USub):
            return lambda env: -inner(env)
        return inner
    if isinstance(node, ast.Call):
        if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS:
            what = node.func.id if isinstance(node.func, ast.Name) else ast.unparse(node.func)
            raise FormulaError(f"function {what!r} is not allowed; the functions are: {', '.join(FUNCTIONS)}")
        if node.keywords:
            raise FormulaError(f"{node.func.id}() takes no keyword arguments")
        func, lo, hi = FUNCTIONS[node.func.id]
        if not lo <= len(node.args) <= hi:
            raise FormulaError(
                f"{node.func.id}() takes {lo}{'' if lo == hi else f' to {hi}'} argument(s), "
                f"got {len(node.args)}"
            )
        if any(isinstance(a, ast.Starred) for a in node.args):
            raise FormulaError(f"{node.func.id}() does not take *arguments")
        args = [_compile(a, keys, used, d) for a in node.args]
        return lambda env: float(func(*(a(env) for a in args)))
    text = ast.unparse(node) if isinstance(node, ast.expr) else type(node).__name__
    raise FormulaError(
        f"`{text}` is not allowed in calculate_output; use numbers, grader keys, "
        "+ - * / ^, parentheses and the functions " + ", ".join(FUNCTIONS)
    )
