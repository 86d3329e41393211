"""What every compiled grader shares: the row it grades, its runtime, its result."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from rftgrade._columns import Columns
from rftgrade._embeddings import Embedder
from rftgrade._executors import JudgeExecutor, PythonExecutor
from rftgrade._rawitem import RawItem
from rftgrade._result import GradeResult
from rftgrade._sample import Sample, make_sample
from rftgrade._specs import AnyGrader
from rftgrade._template import Template, VariableError

__all__ = ["CompiledGrader", "Row", "Runtime", "flag_variable_error", "render", "rows_of"]


class Row:
    """One ``(sample, item)`` to grade; the sample and template namespaces are built on first use.

    A text sample stays a plain ``str`` until a grader asks for :attr:`sample`, and
    an item that arrived as JSON text (:class:`~rftgrade._rawitem.RawItem`) stays
    text until a grader asks for :attr:`item`: python graders send both to the
    sandbox as they are (see :meth:`wire` and :meth:`wire_item`).
    """

    __slots__ = ("_item", "_ns", "_sample")

    def __init__(self, sample: Sample | str, item: dict[str, Any] | RawItem) -> None:
        self._sample = sample
        self._item = item
        self._ns: dict[str, Any] | None = None

    @property
    def item(self) -> dict[str, Any]:
        item = self._item
        if type(item) is RawItem:
            item = self._item = item.parse()
        return item  # type: ignore[return-value]

    def wire_item(self) -> dict[str, Any] | RawItem:
        """The item for the sandbox worker: its JSON text if it is still text."""
        return self._item

    @property
    def sample(self) -> Sample:
        sample = self._sample
        if type(sample) is str:
            sample = self._sample = make_sample(sample)
        return sample  # type: ignore[return-value]

    def wire(self) -> str | dict[str, Any]:
        """The sample in the sandbox worker's compact form (:meth:`Sample.to_wire`)."""
        sample = self._sample
        return sample if type(sample) is str else sample.to_wire()  # type: ignore[union-attr]

    @property
    def ns(self) -> dict[str, Any]:
        """``{"sample": ..., "item": ...}`` for templates (python graders never need it)."""
        if self._ns is None:
            self._ns = {"sample": self.sample.namespace(), "item": self.item}
        return self._ns


@dataclass
class Runtime:
    """The executors a grading run may use; any may be missing."""

    python: PythonExecutor | None = None
    judge: JudgeExecutor | None = None
    embedder: Embedder | None = None
    python_timeout: float | None = None
    python_batch_timeout: float | None = None
    """Seconds for all of one call's python samples together (``None``: no bound)."""
    extras: dict[str, Any] = field(default_factory=dict)
    owned: tuple[Any, ...] = ()
    """The executors this runtime started (:func:`rftgrade.build_runtime`): closed with
    it. Executors shared with others (a registry's) are not in it."""

    async def aclose(self) -> None:
        """Close the executors this runtime owns, and only those."""
        owned, self.owned = self.owned, ()
        for executor in owned:
            await executor.aclose()


class CompiledGrader:
    """A validated grader, ready to grade rows.

    Subclasses set :attr:`is_sync` when :meth:`grade_one` alone suffices (no I/O).
    """

    is_sync: bool = True

    def __init__(self, spec: AnyGrader) -> None:
        self.spec = spec
        self.name = spec.name
        self.type = spec.type

    def new_result(self) -> GradeResult:
        return GradeResult(reward=0.0, name=self.name, type=self.type)

    def grade_one(self, row: Row) -> GradeResult:
        """Grade one row synchronously (only for :attr:`is_sync` graders)."""
        raise NotImplementedError(f"{type(self).__name__} grades asynchronously")

    def grade_rows(self, rows: Sequence[Row]) -> list[GradeResult]:
        """Grade rows synchronously (only for :attr:`is_sync` graders)."""
        grade = self.grade_one
        out = []
        for row in rows:
            start = time.perf_counter()
            result = grade(row)
            result.execution_time = time.perf_counter() - start
            out.append(result)
        return out

    async def grade_batch(self, rows: Sequence[Row], runtime: Runtime) -> list[GradeResult]:
        """Grade rows; one result per row, in order. Never raises for a bad row."""
        return self.grade_rows(rows)

    async def grade_columns(self, columns: Columns, runtime: Runtime) -> list[GradeResult]:
        """Grade a batch held as columns: the core's batch type.

        The caller (:class:`~rftgrade.Grader`) has checked the columns: every sample
        is text within the length limit, every item a dict or
        :class:`~rftgrade._rawitem.RawItem`. This default grades them as rows; a
        grader that can use the columns as they are (``python``) overrides it.
        """
        return await self.grade_batch(rows_of(columns), runtime)

    def grade_columns_sync(self, columns: Columns) -> list[GradeResult]:
        """:meth:`grade_columns` for :attr:`is_sync` graders, without an event loop."""
        return self.grade_rows(rows_of(columns))

    async def warm(self, runtime: Runtime) -> None:
        """Start what grading will need (sandbox workers), without waiting for it."""
        for sub in self.sub_graders().values():
            await sub.warm(runtime)

    def sub_graders(self) -> dict[str, CompiledGrader]:
        return {}


def rows_of(columns: Columns) -> list[Row]:
    """Checked columns (see :meth:`CompiledGrader.grade_columns`) as :class:`Row` objects."""
    return list(map(Row, columns.samples, columns.items))  # type: ignore[arg-type]  # checked by the caller


def flag_variable_error(exc: VariableError, row: Row, result: GradeResult) -> None:
    """A missing template variable: ``sample_parse_error`` when it is ``output_json`` of a
    non-JSON output, else ``invalid_variable_error``."""
    if exc.variable.startswith("sample.output_json") and not row.sample.has_json:
        result.fail(
            "sample_parse_error",
            f"{{{{ {exc.variable} }}}}: the model output is not valid JSON, so sample.output_json is not available",
        )
    else:
        result.fail("invalid_variable_error", str(exc))


def render(template: Template, row: Row, result: GradeResult) -> str | None:
    """Render ``template`` for ``row``; on a missing variable flag ``result`` and return None."""
    try:
        return template.render(row.ns)
    except VariableError as exc:
        flag_variable_error(exc, row, result)
        return None
