"""OpenAI-compatible routes: ``graders/run`` and ``graders/validate``, with OpenAI's
bodies and answers, so that the ``openai`` client works against the server as is."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response

from rftgrade._exceptions import BackendUnavailableError, GraderValidationError
from rftgrade._grader import validate
from rftgrade._load import grader_to_dict
from rftgrade._result import GradeResult
from rftgrade.server._errors import fast_json, problems_error
from rftgrade.server._middleware import OrjsonRoute
from rftgrade.server._models import RunRequest, ValidateRequest
from rftgrade.server._state import ServerState, backend_error

__all__ = ["openai_router"]


def openai_router(state: ServerState) -> APIRouter:
    """``POST /v1/fine_tuning/alpha/graders/run`` and ``.../validate``."""
    router = APIRouter(route_class=OrjsonRoute)

    @router.post("/v1/fine_tuning/alpha/graders/run")
    async def run(body: RunRequest) -> Response:
        try:
            # An inline grader: compiled once, then kept in the registry's LRU of them.
            grader = state.registry.add(body.grader)
        except GraderValidationError as exc:
            if all(p.kind == "formula" for p in exc.problems):
                # OpenAI answers a bad formula with a flagged result, not an HTTP error.
                result = GradeResult(reward=0.0, name=str(body.grader.get("name", "")), type="multi")
                result.fail("formula_parse_error", "; ".join(str(p) for p in exc.problems))
                return fast_json(result.to_answer())
            return problems_error(exc)
        except BackendUnavailableError as exc:
            return backend_error(exc)

        async def work() -> Response:
            (result,) = await state.grade(grader, [{"sample": body.model_sample, "item": body.item or {}}])
            state.record(grader, [result])
            return fast_json(result.to_answer())

        return await state.admission.admitted(1, work)

    @router.post("/v1/fine_tuning/alpha/graders/validate")
    async def validate_route(body: ValidateRequest) -> Response:
        report = validate(body.grader)
        if not report.ok or report.spec is None:
            return problems_error(GraderValidationError(report.problems))
        return JSONResponse({"grader": grader_to_dict(report.spec)})

    return router
