"""Compiled graders, one module per grader type; :func:`compile_spec` picks the class."""

from __future__ import annotations

from rftgrade._graders.base import CompiledGrader, Row, Runtime
from rftgrade._graders.compile import compile_spec

__all__ = ["CompiledGrader", "Row", "Runtime", "compile_spec"]
