"""The public grading API: load a grader once, grade one row or many, sync or async.

Every face of rftgrade (CLI, server, trainer adapters) grades through
:class:`Grader`; none of them grades on its own.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from rftgrade._columns import Columns
from rftgrade._dedupe import dedupe_columns, dedupe_rows
from rftgrade._embeddings import Embedder
from rftgrade._exceptions import GraderValidationError, Problem
from rftgrade._executors import JudgeExecutor, PythonExecutor, PythonProgram
from rftgrade._gc import gc_paused
from rftgrade._graders import CompiledGrader, Row, Runtime, compile_spec
from rftgrade._load import GraderLike, grader_to_dict, load_spec
from rftgrade._portal import get_portal
from rftgrade._rawitem import RawItem
from rftgrade._result import GradeResult
from rftgrade._rows import NO_SAMPLE_HINT, split_row
from rftgrade._runtime import build_runtime
from rftgrade._sample import SampleLike, make_sample
from rftgrade._specs import AnyGrader

__all__ = ["Grader", "RowLike", "ValidationReport", "grader_id", "validate"]

RowLike = Mapping[str, Any] | tuple[Any, Any]
"""A row: ``{"sample": ..., "item": {...}}``, a ``(sample, item)`` tuple, or an OpenAI RFT
dataset row with its sample (``"sample"``, or a final assistant turn in ``messages``)."""


def grader_id(spec: AnyGrader) -> str:
    """A stable id for a grader: a hash of its canonical JSON."""
    canonical = json.dumps(grader_to_dict(spec), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "grader_" + hashlib.sha256(canonical.encode()).hexdigest()[:24]


class ValidationReport:
    """What :func:`validate` found: problems (invalid) and warnings (valid but suspicious)."""

    def __init__(
        self,
        spec: AnyGrader | None,
        problems: list[Problem],
        warnings: list[str],
        isolation: dict[str, tuple[str, str]] | None = None,
    ) -> None:
        self.spec = spec
        self.problems = problems
        self.warnings = warnings
        self.isolation = isolation or {}
        """Each python grader's path (``""`` for the root) -> (isolation, why), as a
        sandbox executor left at its default would run it."""

    @property
    def ok(self) -> bool:
        return not self.problems


def validate(source: GraderLike, *, judge: JudgeExecutor | None = None) -> ValidationReport:
    """Check a grader without running it: schema, templates, formula, python source, models.

    Args:
        source: grader JSON text, dict, path or spec.
        judge: when given, model graders' ``model`` names are checked against it.
    """
    try:
        spec = load_spec(source)
    except GraderValidationError as exc:
        return ValidationReport(None, exc.problems, [])
    problems: list[Problem] = []
    try:
        compiled = compile_spec(spec)
    except GraderValidationError as exc:
        problems += exc.problems
        compiled = None
    if judge is not None and compiled is not None:
        problems += _model_problems(compiled, judge, "")
    isolation = _isolation_choices(compiled, "") if compiled is not None else {}
    return ValidationReport(spec, problems, [], isolation)


def _isolation_choices(compiled: CompiledGrader, path: str) -> dict[str, tuple[str, str]]:
    out: dict[str, tuple[str, str]] = {}
    program = getattr(compiled, "program", None)
    if isinstance(program, PythonProgram):
        if program.isolation is not None:
            out[path] = (program.isolation, "the grader's JSON says so")
        else:
            out[path] = (program.auto_isolation, program.isolation_reason)
    for key, sub in compiled.sub_graders().items():
        out.update(_isolation_choices(sub, f"{path}.graders.{key}" if path else f"graders.{key}"))
    return out


def _model_problems(compiled: CompiledGrader, judge: JudgeExecutor, path: str) -> list[Problem]:
    out = []
    model = getattr(compiled, "model", None)
    if isinstance(model, str):
        why = judge.can_serve(model)
        if why:
            out.append(Problem(f"{path}.model" if path else "model", why, "model"))
    for key, sub in compiled.sub_graders().items():
        out += _model_problems(sub, judge, f"{path}.graders.{key}" if path else f"graders.{key}")
    return out


_ITEM_TYPES = (dict, RawItem)
_ITEM_TYPE_SET = frozenset(_ITEM_TYPES)

DEFAULT_MAX_SAMPLE_CHARS = 2_000_000
"""Longer model outputs are cut to this many characters and flagged ``truncated_observation_error``."""


def _to_row(row: RowLike | Any, max_chars: int) -> tuple[Row | None, str | None, bool]:
    try:
        if type(row) is dict and "sample" in row and "messages" not in row:  # the common case, no ABC checks
            sample, item = row["sample"], row.get("item")
        elif isinstance(row, tuple) and len(row) == 2:
            sample, item = row
        elif isinstance(row, Mapping):
            if "item" not in row and "messages" in row:  # an OpenAI RFT dataset row
                item, sample = split_row(dict(row))
                if sample is None:
                    return None, f"row has no sample: {NO_SAMPLE_HINT}", False
            elif "sample" not in row:
                return None, 'row has no `sample`; each row is {"sample": ..., "item": {...}}', False
            else:
                sample, item = row["sample"], row.get("item")
        else:
            return None, f"a row is a {{sample, item}} object, not {type(row).__name__}", False
        item = {} if item is None else item
        if not isinstance(item, _ITEM_TYPES):
            return None, f"`item` must be a JSON object, got {type(item).__name__}", False
        truncated = False
        if isinstance(sample, str) and len(sample) > max_chars:
            sample, truncated = sample[:max_chars], True
        # Text stays text until a grader reads it (python graders send it as is).
        return Row(sample if type(sample) is str else make_sample(sample), item), None, truncated
    except TypeError as exc:
        return None, str(exc), False


class Grader:
    """A compiled grader plus the executors it runs with.

    Executors come from :func:`rftgrade.build_runtime`: ``sandbox=`` (or ``ray=``)
    starts the ones the grader needs, and they are the grader's, closed with it.
    Executors passed as ``python=`` / ``judge=`` are handed over to the grader too
    (closed with it). To share executors between graders, pass a ``runtime``
    built with providers, or use :class:`~rftgrade.GraderRegistry`: the grader
    then closes only what it owns (:attr:`Runtime.owned`).

    Example:
        >>> g = Grader({"type": "string_check", "name": "x", "input": "{{ sample.output_text }}",
        ...             "reference": "{{ item.answer }}", "operation": "eq"})
        >>> g.run("42", {"answer": "42"}).reward
        1.0
    """

    def __init__(
        self,
        source: GraderLike,
        *,
        python: PythonExecutor | None = None,
        judge: JudgeExecutor | None = None,
        embedder: Embedder | None = None,
        sandbox: str | None = None,
        ray: str | None = None,
        runtime: Runtime | None = None,
        python_timeout: float | None = None,
        python_batch_timeout: float | None = None,
        max_sample_chars: int = DEFAULT_MAX_SAMPLE_CHARS,
    ) -> None:
        self.spec: AnyGrader = load_spec(source)
        self.compiled: CompiledGrader = compile_spec(self.spec)
        if runtime is None:
            runtime = build_runtime(
                self.spec,
                python=python,
                judge=judge,
                embedder=embedder,
                sandbox=sandbox,
                ray=ray,
                start=sandbox is not None,
                own_given=True,
                python_timeout=python_timeout,
                python_batch_timeout=python_batch_timeout,
            )
        if runtime.judge is not None:
            # A model nobody can serve is a configuration error, found now rather
            # than as a flag on every sample.
            problems = _model_problems(self.compiled, runtime.judge, "")
            if problems:
                get_portal().call(runtime.aclose())
                raise GraderValidationError(problems)
        self.id = grader_id(self.spec)
        self.max_sample_chars = max_sample_chars
        self.runtime = runtime

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def type(self) -> str:
        return self.spec.type

    def to_dict(self) -> dict[str, Any]:
        """The grader as OpenAI grader JSON."""
        return grader_to_dict(self.spec)

    # -- one row -------------------------------------------------------------
    def run(self, sample: SampleLike, item: Mapping[str, Any] | None = None) -> GradeResult:
        """Grade one ``(sample, item)``; never raises for bad data (see ``result.errors``)."""
        return self.run_batch([(sample, dict(item) if item is not None else {})])[0]

    async def arun(self, sample: SampleLike, item: Mapping[str, Any] | None = None) -> GradeResult:
        """Async :meth:`run`."""
        return (await self.arun_batch([(sample, dict(item) if item is not None else {})]))[0]

    # -- many rows -----------------------------------------------------------
    def _prepare(
        self, rows: Iterable[RowLike]
    ) -> tuple[list[Row], list[int], list[GradeResult | None], set[int]]:
        prepared: list[Row] = []
        positions: list[int] = []
        results: list[GradeResult | None] = []
        truncated: set[int] = set()
        limit = self.max_sample_chars
        with gc_paused():
            for i, raw in enumerate(rows):
                # The common row, {"sample": "<text>", "item": {...}}, has no check to fail.
                if type(raw) is dict:
                    sample, item = raw.get("sample"), raw.get("item")
                    if type(sample) is str and type(item) in _ITEM_TYPES and len(sample) <= limit:
                        prepared.append(Row(sample, item))  # type: ignore[arg-type]
                        positions.append(i)
                        results.append(None)
                        continue
                row, error, was_cut = _to_row(raw, limit)
                if was_cut:
                    truncated.add(len(prepared))
                if row is None:
                    bad = GradeResult(reward=0.0, name=self.name, type=self.type)
                    bad.fail("sample_parse_error", error or "bad row")
                    results.append(bad)
                else:
                    prepared.append(row)
                    positions.append(i)
                    results.append(None)
        return prepared, positions, results, truncated

    def _finish(
        self,
        results: list[GradeResult | None],
        positions: list[int],
        graded: Sequence[GradeResult],
        truncated: set[int],
    ) -> list[GradeResult]:
        if not truncated and len(graded) == len(results):  # every row was well formed
            return list(graded)
        for index, (pos, result) in enumerate(zip(positions, graded, strict=True)):
            if index in truncated:
                # Graded on the cut text: the reward stands, the flag says it was cut.
                result.errors.truncated_observation_error = True
                result.error_messages.append(
                    f"the sample was longer than {self.max_sample_chars:,} characters and was truncated"
                )
            results[pos] = result
        return [r for r in results if r is not None]

    def _clean_columns(self, rows: Iterable[RowLike] | Columns) -> Columns | None:
        """``rows`` when they are :class:`Columns` that need no row check (text samples
        within the limit, object items): the compiled grader takes them as they are."""
        if not isinstance(rows, Columns) or not len(rows):
            return None
        samples, items = rows.samples, rows.items
        # Whole-column checks run in C: the rows they accept are exactly the rows
        # _prepare's common-row path accepts.
        if set(map(type, samples)) != {str} or not set(map(type, items)) <= _ITEM_TYPE_SET:
            return None
        if max(map(len, samples)) > self.max_sample_chars:
            return None
        return rows

    def run_batch(self, rows: Iterable[RowLike] | Columns, *, dedupe: bool = False) -> list[GradeResult]:
        """Grade many rows, in order. One broken row never sinks the batch.

        ``rows`` is a list of ``{"sample", "item"}`` rows (or ``(sample, item)``
        tuples, or OpenAI RFT dataset rows), or :class:`~rftgrade.Columns`.

        With ``dedupe``, identical rows are graded once and every copy gets that
        row's result (one object for all of them): for batches that repeat
        completions, as GRPO groups of short answers do.

        Where the process allows it (:func:`rftgrade.set_gc_pausing`), the cyclic
        garbage collector is paused for the call (see :mod:`rftgrade._gc`).
        """
        with gc_paused():
            batch, where = _deduped(rows) if dedupe else (rows, None)
            out = self._run_sync(batch)
            if where is not None:
                out = [out[j] for j in where]
            del batch
        return out

    def _run_sync(self, rows: Iterable[RowLike] | Columns) -> list[GradeResult]:
        columns = self._clean_columns(rows)
        if columns is not None:
            if self.compiled.is_sync:
                return self.compiled.grade_columns_sync(columns)
            return get_portal().call(self._grade_columns(columns))
        prepared, positions, results, truncated = self._prepare(_as_rows(rows))
        if self.compiled.is_sync:
            graded = self.compiled.grade_rows(prepared)
        else:
            graded = get_portal().call(self._grade_async(prepared))
        out = self._finish(results, positions, graded, truncated)
        # Freed now by reference counting, not walked by a collection the pause deferred.
        del prepared, positions, results, graded
        return out

    async def arun_batch(
        self, rows: Iterable[RowLike] | Columns, *, dedupe: bool = False
    ) -> list[GradeResult]:
        """Async :meth:`run_batch`."""
        batch, where = _deduped(rows) if dedupe else (rows, None)
        columns = self._clean_columns(batch)
        if columns is not None:
            if self.compiled.is_sync:
                out = self.compiled.grade_columns_sync(columns)
            else:
                out = await get_portal().acall(self._grade_columns(columns))
        else:
            prepared, positions, results, truncated = self._prepare(_as_rows(batch))
            if self.compiled.is_sync:
                graded = self.compiled.grade_rows(prepared)
            else:
                graded = await get_portal().acall(self._grade_async(prepared))
            out = self._finish(results, positions, graded, truncated)
        return out if where is None else [out[j] for j in where]

    async def _grade_columns(self, columns: Columns) -> list[GradeResult]:
        return await self.compiled.grade_columns(columns, self.runtime)

    async def _grade_async(self, rows: list[Row]) -> list[GradeResult]:
        start = time.perf_counter()
        graded = await self.compiled.grade_batch(rows, self.runtime)
        if not rows:
            return graded
        # Model and sandbox graders report their own per-row times; fill any gap.
        elapsed = (time.perf_counter() - start) / len(rows)
        for result in graded:
            if not result.execution_time:
                result.execution_time = elapsed
        return graded

    def warm(self) -> None:
        """Start this grader's sandbox workers now, in the background, and return.

        The first batch then finds them started (or starting) instead of starting
        them itself: call it before reading data or loading a model. A worker that
        fails to start is reported by the batch that needed it, as without warming.
        """
        get_portal().call(self.compiled.warm(self.runtime))

    async def aclose(self) -> None:
        """Release the executors this grader owns (pools, clients); shared ones stay open."""
        await get_portal().acall(self.runtime.aclose())

    def close(self) -> None:
        """:meth:`aclose`, from synchronous code."""
        get_portal().call(self.runtime.aclose())

    def __enter__(self) -> Grader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _as_rows(rows: Iterable[RowLike] | Columns) -> Iterable[RowLike]:
    return rows.rows() if isinstance(rows, Columns) else rows


def _deduped(rows: Iterable[RowLike] | Columns) -> tuple[Iterable[RowLike] | Columns, list[int] | None]:
    """The distinct rows of a batch and where each row's copy is (``None``: all distinct)."""
    if isinstance(rows, Columns):
        return dedupe_columns(rows)
    listed = rows if isinstance(rows, list) else list(rows)
    if not all(type(row) is dict for row in listed):
        return listed, None  # tuples and other shapes: graded as they are
    unique, where = dedupe_rows(listed)
    return unique, (None if len(unique) == len(listed) else where)
