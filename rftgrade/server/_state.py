"""What the reward server's routes share: its registry, limits, metrics and the
few steps every grading route takes (find the grader, grade, count the results).

Routes only translate HTTP to the library API (:class:`~rftgrade._registry.GraderRegistry`
and :class:`~rftgrade.Grader`) and back; they never grade on their own.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from fastapi.responses import JSONResponse

from rftgrade._columns import Columns
from rftgrade._exceptions import BackendUnavailableError, GraderValidationError
from rftgrade._grader import Grader
from rftgrade._registry import GraderRegistry, RegistryFullError, UnknownGraderError
from rftgrade._result import GradeResult
from rftgrade.server._admission import Admission
from rftgrade.server._config import ServerConfig
from rftgrade.server._errors import error, problems_error
from rftgrade.server._metrics import ServerMetrics

__all__ = ["ServerState"]

_INLINE_SYNC_ROWS = 64
"""Deterministic batches up to this size run on the event loop (a thread costs more)."""


@dataclass
class ServerState:
    """One server's shared parts, handed to each group of routes."""

    config: ServerConfig
    registry: GraderRegistry
    metrics: ServerMetrics
    admission: Admission
    default_ref: str | None
    strip_tokens: tuple[str, ...]

    def record(self, grader: Grader, results: Sequence[GradeResult]) -> None:
        """Count graded samples and their error flags for ``/metrics``."""
        self.metrics.samples.labels(grader.type).inc(len(results))
        errors = self.metrics.errors
        for result in results:
            for flag in result.flags():
                errors.labels(flag).inc()

    async def grade(self, grader: Grader, rows: list[Any] | Columns) -> list[GradeResult]:
        if grader.compiled.is_sync and len(rows) > _INLINE_SYNC_ROWS:
            # Deterministic graders run inline; keep the event loop free for other clients.
            return await asyncio.to_thread(grader.run_batch, rows)
        return await grader.arun_batch(rows)

    def lookup(self, ref: str | dict[str, Any] | None) -> Grader | JSONResponse:
        """The grader a request names (JSON, id or name; none: the default), or the error why not."""
        ref = ref if ref is not None else self.default_ref
        if ref is None:
            return error(
                400,
                "no grader given and the server has no default; pass `grader` (JSON or id) or "
                "start the server with --grader NAME=path.json",
                param="grader",
            )
        if not isinstance(ref, str):
            return self.compile_grader(ref)
        try:
            return self.registry.get(ref)
        except UnknownGraderError:
            return error(
                404,
                f"no grader registered as {ref!r}; register it with POST /v1/graders",
                param="grader",
                code="unknown_grader",
            )

    def compile_grader(self, source: dict[str, Any], name: str | None = None) -> Grader | JSONResponse:
        """Compile (once) and register grader JSON, or the 400 that says why not."""
        try:
            return self.registry.add(source, name=name)
        except GraderValidationError as exc:
            return problems_error(exc)
        except BackendUnavailableError as exc:
            return backend_error(exc)
        except RegistryFullError as exc:
            return error(400, str(exc), param="name", code="too_many_graders")


def backend_error(exc: BackendUnavailableError) -> JSONResponse:
    """The 400 for a grader whose sandbox cannot run here."""
    return error(400, str(exc), param="grader", code="backend_unavailable")
