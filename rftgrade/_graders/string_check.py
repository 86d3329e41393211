"""``string_check``: eq / ne / like (contains) / ilike (case-insensitive contains)."""

from __future__ import annotations

from collections.abc import Callable

from rftgrade._graders.base import CompiledGrader, Row, render
from rftgrade._result import GradeResult
from rftgrade._specs import StringCheckGrader
from rftgrade._template import parse_template

__all__ = ["CompiledStringCheck", "OPERATIONS"]

OPERATIONS: dict[str, Callable[[str, str], bool]] = {
    "eq": lambda a, b: a == b,
    "ne": lambda a, b: a != b,
    "like": lambda a, b: b in a,
    # casefold, not lower: "STRASSE" ilike "straße" should match.
    "ilike": lambda a, b: b.casefold() in a.casefold(),
}


class CompiledStringCheck(CompiledGrader):
    def __init__(self, spec: StringCheckGrader) -> None:
        super().__init__(spec)
        self.input = parse_template(spec.input)
        self.reference = parse_template(spec.reference)
        self.op = OPERATIONS[spec.operation]

    def grade_one(self, row: Row) -> GradeResult:
        result = self.new_result()
        hyp = render(self.input, row, result)
        ref = render(self.reference, row, result)
        if hyp is None or ref is None:
            return result
        result.reward = 1.0 if self.op(hyp, ref) else 0.0
        return result
