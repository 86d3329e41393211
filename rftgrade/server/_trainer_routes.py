"""Trainer routes: OpenRLHF's remote reward (``/v1/openrlhf/reward``, and
``/v1/openrlhf/<token>/reward`` for a server behind ``--api-key``).

What OpenRLHF sends and reads is :mod:`rftgrade.integrations.openrlhf`'s business;
these routes only find the grader, admit the rows and grade them.
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response

from rftgrade.integrations import openrlhf as _openrlhf
from rftgrade.integrations.openrlhf import OpenRLHFRequest
from rftgrade.server._errors import fast_json
from rftgrade.server._middleware import OrjsonRoute
from rftgrade.server._state import ServerState

__all__ = ["trainer_router"]


def trainer_router(state: ServerState) -> APIRouter:
    """``POST /v1/openrlhf/reward`` and ``POST /v1/openrlhf/{token}/reward``."""
    router = APIRouter(route_class=OrjsonRoute)

    @router.post("/v1/openrlhf/reward")
    @router.post(_openrlhf.TOKEN_ROUTE)  # the token is checked by AuthAndMeasure, before the body is read
    async def openrlhf(body: OpenRLHFRequest, grader: str | None = None) -> Response:
        found = state.lookup(grader)
        if isinstance(found, JSONResponse):
            return found
        rows = _openrlhf.request_columns(
            body, state.strip_tokens, state.config.reasoning, state.config.tool_calls
        )

        async def work() -> Response:
            results = await state.grade(found, rows)
            state.record(found, results)
            return fast_json(_openrlhf.openrlhf_answer(results))

        return await state.admission.admitted(len(rows), work)

    return router
