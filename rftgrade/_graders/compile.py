"""Spec -> compiled grader; every static check (templates, formula, source) lives here."""

from __future__ import annotations

from rftgrade._exceptions import GraderValidationError, Problem
from rftgrade._formula import FormulaError, parse_formula
from rftgrade._graders.base import CompiledGrader
from rftgrade._graders.model import CompiledLabelModel, CompiledScoreModel
from rftgrade._graders.multi import CompiledMulti
from rftgrade._graders.python import CompiledPython, check_source
from rftgrade._graders.string_check import CompiledStringCheck
from rftgrade._graders.text_similarity import CompiledTextSimilarity
from rftgrade._specs import (
    AnyGrader,
    InputImage,
    InputText,
    LabelModelGrader,
    MultiGrader,
    OutputText,
    PythonGrader,
    ScoreModelGrader,
    StringCheckGrader,
    TextSimilarityGrader,
)
from rftgrade._template import TemplateSyntaxError, parse_template

__all__ = ["compile_spec", "template_problems"]


def _join(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def template_problems(spec: AnyGrader, path: str = "") -> list[Problem]:
    """Every template of ``spec`` that does not parse, with its JSON path."""
    found: list[tuple[str, str]] = []
    if isinstance(spec, (StringCheckGrader, TextSimilarityGrader)):
        found += [(_join(path, "input"), spec.input), (_join(path, "reference"), spec.reference)]
    elif isinstance(spec, (ScoreModelGrader, LabelModelGrader)):
        for i, message in enumerate(spec.input):
            mpath = _join(_join(path, "input"), i)
            content = message.content
            if isinstance(content, str):
                found.append((_join(mpath, "content"), content))
                continue
            parts = content if isinstance(content, list) else [content]
            for j, part in enumerate(parts):
                ppath = (
                    _join(_join(mpath, "content"), j)
                    if isinstance(content, list)
                    else _join(mpath, "content")
                )
                if isinstance(part, (InputText, OutputText)):
                    found.append((_join(ppath, "text"), part.text))
                elif isinstance(part, InputImage):
                    found.append((_join(ppath, "image_url"), part.image_url))
    problems = []
    for where, text in found:
        try:
            parse_template(text)
        except TemplateSyntaxError as exc:
            problems.append(Problem(where, str(exc), "template"))
    return problems


def compile_spec(spec: AnyGrader, path: str = "") -> CompiledGrader:
    """Compile a parsed spec, checking templates, formulas and python source.

    Raises:
        GraderValidationError: listing every problem found, each with its JSON path.
    """
    problems = template_problems(spec, path)
    if isinstance(spec, PythonGrader):
        problems += check_source(spec.source, _join(path, "source"))
    if isinstance(spec, MultiGrader):
        subs: dict[str, CompiledGrader] = {}
        for key, sub in spec.graders.items():
            try:
                subs[key] = compile_spec(sub, _join(_join(path, "graders"), key))
            except GraderValidationError as exc:
                problems += exc.problems
        try:
            formula = parse_formula(spec.calculate_output, set(spec.graders))
        except FormulaError as exc:
            problems.append(Problem(_join(path, "calculate_output"), str(exc), "formula"))
        if problems:
            raise GraderValidationError(problems)
        return CompiledMulti(spec, subs, formula)
    if problems:
        raise GraderValidationError(problems)
    if isinstance(spec, StringCheckGrader):
        return CompiledStringCheck(spec)
    if isinstance(spec, TextSimilarityGrader):
        return CompiledTextSimilarity(spec)
    if isinstance(spec, PythonGrader):
        return CompiledPython(spec)
    if isinstance(spec, ScoreModelGrader):
        return CompiledScoreModel(spec)
    if isinstance(spec, LabelModelGrader):
        return CompiledLabelModel(spec)
    raise GraderValidationError([Problem(_join(path, "type"), f"unknown grader type {spec.type!r}")])
