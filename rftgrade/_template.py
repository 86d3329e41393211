"""``{{ sample.x }}`` / ``{{ item.x }}`` template parsing and rendering.

Templates are parsed once at compile time into literal text and variable
references, so rendering a batch does no regex work per row.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

__all__ = [
    "NAMESPACES",
    "Template",
    "TemplateSyntaxError",
    "VariableError",
    "parse_template",
    "to_text",
]

NAMESPACES = ("sample", "item")

# A `{{ ... }}` expression; whitespace inside the braces is allowed.
_EXPR = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)
_SEGMENT = re.compile(r"\.?([^.\[\]]+)|\[\s*(-?\d+)\s*\]")


class TemplateSyntaxError(ValueError):
    """A ``{{ }}`` expression is malformed or names an unknown namespace."""


class VariableError(LookupError):
    """A template variable is missing from the sample or the item at render time."""

    def __init__(self, variable: str, reason: str) -> None:
        self.variable = variable
        self.reason = reason
        super().__init__(f"{{{{ {variable} }}}}: {reason}")


@dataclass(frozen=True)
class _Var:
    text: str
    namespace: str
    path: tuple[str | int, ...]


@dataclass(frozen=True)
class Template:
    """A parsed template: alternating literal strings and variables."""

    source: str
    parts: tuple[str | _Var, ...]

    @property
    def is_literal(self) -> bool:
        return all(isinstance(p, str) for p in self.parts)

    @property
    def variables(self) -> list[str]:
        return [p.text for p in self.parts if isinstance(p, _Var)]

    def render(self, namespaces: dict[str, Any]) -> str:
        """Substitute every variable; raises :class:`VariableError` if one is missing."""
        if len(self.parts) == 1 and isinstance(self.parts[0], str):
            return self.parts[0]
        out: list[str] = []
        for part in self.parts:
            if isinstance(part, str):
                out.append(part)
            else:
                out.append(to_text(_lookup(part, namespaces)))
        return "".join(out)


def to_text(value: Any) -> str:
    """Render a looked-up value: strings as they are, anything else as compact JSON."""
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    except (TypeError, ValueError):
        return str(value)


def parse_template(source: str) -> Template:
    """Parse ``source`` into a :class:`Template`.

    Raises:
        TemplateSyntaxError: an expression is empty, malformed, or names a namespace
            other than ``sample`` or ``item``.
    """
    parts: list[str | _Var] = []
    pos = 0
    for match in _EXPR.finditer(source):
        if match.start() > pos:
            parts.append(source[pos : match.start()])
        parts.append(_parse_var(match.group(1)))
        pos = match.end()
    if pos < len(source) or not parts:
        parts.append(source[pos:])
    return Template(source=source, parts=tuple(parts))


def _parse_var(expr: str) -> _Var:
    text = expr.strip()
    if not text:
        raise TemplateSyntaxError("empty {{ }} expression; write e.g. {{ item.answer }}")
    if ".." in text or text.endswith(".") or "." + "[" in text:
        raise TemplateSyntaxError(
            f"{{{{ {text} }}}} has an empty key; use dotted keys and [i] indexes, e.g. {{{{ item.a.b[0] }}}}"
        )
    head, _, rest = text.partition(".")
    bracket = head.find("[")
    if bracket >= 0:
        head, rest = head[:bracket], head[bracket:] + ("." + rest if rest else "")
    if head not in NAMESPACES:
        raise TemplateSyntaxError(
            f"{{{{ {text} }}}} reads from {head!r}; templates can read only "
            "`sample` (the model's output) or `item` (the dataset row), e.g. {{ item.answer }}"
        )
    path: list[str | int] = []
    i = 0
    rest = rest if not rest.startswith(".") else rest[1:]
    if rest:
        rest = "." + rest if not rest.startswith("[") else rest
    while i < len(rest):
        seg = _SEGMENT.match(rest, i)
        if seg is None or seg.end() == i:
            raise TemplateSyntaxError(
                f"cannot parse {{{{ {text} }}}} at {rest[i:]!r}; use dotted keys and [i] "
                "indexes, e.g. {{ sample.output_tools[0].function.name }}"
            )
        key, index = seg.group(1), seg.group(2)
        if key is not None:
            key = key.strip()
            if not key:
                raise TemplateSyntaxError(f"empty key in {{{{ {text} }}}}")
            path.append(key)
        else:
            path.append(int(index))
        i = seg.end()
    return _Var(text=text, namespace=head, path=tuple(path))


def _lookup(var: _Var, namespaces: dict[str, Any]) -> Any:
    value = namespaces[var.namespace]
    walked = var.namespace
    for step in var.path:
        if isinstance(step, int):
            if not isinstance(value, (list, tuple)):
                raise VariableError(var.text, f"{walked} is not a list, cannot take [{step}]")
            if not -len(value) <= step < len(value):
                raise VariableError(
                    var.text, f"index [{step}] is out of range: {walked} has {len(value)} items"
                )
            value = value[step]
            walked = f"{walked}[{step}]"
        else:
            if isinstance(value, dict) and step in value:
                value = value[step]
            elif isinstance(value, (list, tuple)) and step.lstrip("-").isdigit():
                idx = int(step)
                if not -len(value) <= idx < len(value):
                    raise VariableError(var.text, f"index {idx} is out of range in {walked}")
                value = value[idx]
            else:
                if isinstance(value, dict):
                    keys = ", ".join(sorted(map(str, value))[:10]) or "no keys"
                    reason = f"{walked} has no key {step!r} (it has: {keys})"
                else:
                    reason = f"{walked} is {type(value).__name__}, not an object"
                raise VariableError(var.text, reason)
            walked = f"{walked}.{step}"
    return value
