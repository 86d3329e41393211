"""Exceptions for programmer and configuration mistakes; grading failures are data.

Hierarchy::

    RftgradeError
    ├── GraderValidationError   a grader spec is invalid (carries every problem + JSON path)
    ├── DataError               an input row or file cannot be read
    └── BackendUnavailableError a requested sandbox or model backend cannot be used here

A failure while grading one sample (a template variable that is missing, a user
exception, a judge that times out) never raises: it becomes an error flag on the
result, with reward 0.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "BackendUnavailableError",
    "DataError",
    "GraderValidationError",
    "Problem",
    "RftgradeError",
]


class RftgradeError(Exception):
    """Base class of every exception rftgrade raises on purpose."""


@dataclass(frozen=True)
class Problem:
    """One problem found in a grader spec."""

    path: str
    """JSON path of the offending value, e.g. ``graders.email.operation``."""
    message: str
    """What is wrong and how to fix it."""
    kind: str = "schema"
    """``schema``, ``template``, ``formula``, ``python`` or ``model``."""

    def __str__(self) -> str:
        return f"{self.path or '<root>'}: {self.message}"


class GraderValidationError(RftgradeError, ValueError):
    """A grader spec failed validation; ``problems`` lists every issue found."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"invalid grader ({len(problems)} problem(s)):\n{lines}")


class DataError(RftgradeError, ValueError):
    """An input file or row could not be read."""


class BackendUnavailableError(RftgradeError, RuntimeError):
    """A sandbox or model backend was asked for but cannot run on this machine."""
