"""``python``: user code, run by a :class:`~rftgrade._executors.PythonExecutor`.

The source is checked on the host with :mod:`ast` only (syntax, a ``grade``
function of two arguments, the 256 kB limit); it is never executed outside the
executor, which is where isolation lives.
"""

from __future__ import annotations

import ast
import hashlib
import time
from collections.abc import Sequence

from rftgrade._columns import Columns
from rftgrade._exceptions import Problem
from rftgrade._executors import PythonCalls, PythonOutcome, PythonProgram
from rftgrade._gc import gc_paused
from rftgrade._graders.base import CompiledGrader, Row, Runtime
from rftgrade._isolation import choose_isolation
from rftgrade._result import GradeResult
from rftgrade._specs import PythonGrader

__all__ = ["MAX_SOURCE_BYTES", "CompiledPython", "apply_outcome", "check_source"]

MAX_SOURCE_BYTES = 256 * 1024


def check_source(source: str, path: str = "source") -> list[Problem]:
    """Static checks of a python grader's source; returns the problems found."""
    size = len(source.encode("utf-8", "surrogatepass"))
    if size > MAX_SOURCE_BYTES:
        return [
            Problem(path, f"source is {size:,} bytes; the limit is 256 kB ({MAX_SOURCE_BYTES:,})", "python")
        ]
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        return [
            Problem(
                path,
                f"SyntaxError at line {exc.lineno}, column {exc.offset}: {exc.msg}"
                + (f" -> {exc.text.strip()!r}" if exc.text else ""),
                "python",
            )
        ]
    except (ValueError, RecursionError, MemoryError) as exc:
        return [Problem(path, f"source cannot be parsed: {exc}", "python")]
    grade: ast.stmt | None = None
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == "grade":
            grade = node
        elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.ImportFrom, ast.Import)):
            targets = (
                node.targets
                if isinstance(node, ast.Assign)
                else [node.target]
                if isinstance(node, ast.AnnAssign)
                else []
            )
            names = [a.asname or a.name for a in getattr(node, "names", [])]
            if any(isinstance(t, ast.Name) and t.id == "grade" for t in targets) or "grade" in names:
                grade = node
    if grade is None:
        return [
            Problem(
                path,
                "no top-level `grade` function; define `def grade(sample: dict, item: dict) -> float:`",
                "python",
            )
        ]
    if isinstance(grade, ast.AsyncFunctionDef):
        return [
            Problem(path, f"line {grade.lineno}: `grade` must be a plain `def`, not `async def`", "python")
        ]
    if isinstance(grade, ast.FunctionDef):
        args = grade.args
        positional = len(args.posonlyargs) + len(args.args)
        required = positional - len(args.defaults)
        if (args.vararg is None and positional < 2) or required > 2:
            return [
                Problem(
                    path,
                    f"line {grade.lineno}: grade() takes {positional} positional argument(s) "
                    f"({required} required); it must take exactly two: grade(sample, item)",
                    "python",
                )
            ]
    return []


def _last_line(text: str) -> str:
    """The exception line of a traceback: what a person reads first."""
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1].strip() if lines else ""


def apply_outcome(result: GradeResult, outcome: PythonOutcome) -> GradeResult:
    """Copy an executor's outcome onto a result, mapping failures to OpenAI's flags."""
    result.execution_time = outcome.duration
    if outcome.stdout:
        result.scores["stdout"] = outcome.stdout
    if outcome.error is None and outcome.reward is not None:
        result.reward = outcome.reward
    elif outcome.error == "server":
        result.fail(
            "python_grader_server_error",
            f"sandbox failure ({outcome.error_type}): {outcome.details or ''}".strip(),
            python_grader_server_error_type=outcome.error_type or "unknown",
        )
    elif outcome.error == "timeout":
        result.errors.unresponsive_reward_error = True
        result.fail(
            "python_grader_runtime_error",
            outcome.details or "grade() ran past its time limit and was killed",
            python_grader_runtime_error_details=outcome.details or "timeout",
        )
    else:
        details = outcome.details or f"{outcome.error_type or 'Error'}"
        result.fail(
            "python_grader_runtime_error",
            _last_line(details) or "grade() failed",
            python_grader_runtime_error_details=details,
        )
    return result


class CompiledPython(CompiledGrader):
    is_sync = False

    def __init__(self, spec: PythonGrader) -> None:
        super().__init__(spec)
        digest = hashlib.sha256(spec.source.encode("utf-8", "surrogatepass")).hexdigest()
        isolation = spec.isolation
        auto = choose_isolation(spec.source)
        self.program = PythonProgram(
            source=spec.source,
            digest=digest,
            name=spec.name,
            isolation=isolation if isinstance(isolation, str) else None,
            auto_isolation=auto.isolation,
            isolation_reason=auto.reason,
        )

    async def grade_batch(self, rows: Sequence[Row], runtime: Runtime) -> list[GradeResult]:
        with gc_paused():
            calls = PythonCalls([row.wire() for row in rows], [row.wire_item() for row in rows])
        return await self.grade_calls(calls, runtime)

    async def grade_columns(self, columns: Columns, runtime: Runtime) -> list[GradeResult]:
        # The columns are the calls: no object per row on the host before the sandbox
        # (items still in their JSON text go to the worker as that text).
        calls = PythonCalls(list(columns.samples), list(columns.items))  # type: ignore[arg-type]  # checked
        return await self.grade_calls(calls, runtime)

    async def warm(self, runtime: Runtime) -> None:
        warm = getattr(runtime.python, "warm", None)  # an optional executor method
        if warm is not None:
            await warm(self.program)

    async def grade_calls(self, calls: PythonCalls, runtime: Runtime) -> list[GradeResult]:
        """Grade calls already in the executor's form (one result each, in order)."""
        executor = runtime.python
        if executor is None:
            return [
                self.new_result().fail(
                    "python_grader_server_error",
                    "no sandbox is available to run python graders; choose one with "
                    "--sandbox docker|bwrap|process (see `rftgrade sandbox doctor`)",
                    python_grader_server_error_type="sandbox_unavailable",
                )
                for _ in calls
            ]
        start = time.perf_counter()
        try:
            outcomes = await executor.run(
                self.program,
                calls,
                timeout=runtime.python_timeout,
                batch_timeout=runtime.python_batch_timeout,
            )
        except Exception as exc:  # an executor bug must not sink the batch
            elapsed = time.perf_counter() - start
            outcomes = [
                PythonOutcome(
                    error="server",
                    error_type="executor_error",
                    details=f"{type(exc).__name__}: {exc}",
                    duration=elapsed,
                )
                for _ in calls
            ]
        del calls
        name, kind, isolated = self.name, self.type, executor.isolated
        # Which isolation ran this grader and why, in every result (one string for all).
        choose = getattr(executor, "isolation_for", None)
        label = "{} ({})".format(*choose(self.program)) if choose is not None else None
        results = []
        with gc_paused():
            for outcome in outcomes:
                if outcome.error is None and outcome.reward is not None and not outcome.stdout and isolated:
                    # The common case in one step: a clean reward.
                    scores = {"isolation": label} if label is not None else None
                    results.append(GradeResult(outcome.reward, name, kind, None, outcome.duration, scores))
                    continue
                result = apply_outcome(self.new_result(), outcome)
                if label is not None:
                    result.scores["isolation"] = label
                if not isolated:
                    result.scores["sandbox"] = f"{executor.name} (NOT isolated)"
                results.append(result)
        return results
