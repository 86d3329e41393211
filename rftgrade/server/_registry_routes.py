"""Registry routes: ``/v1/graders`` compiles a grader once under a name or id that
later requests give instead of its JSON, lists them, and shows one."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response

from rftgrade.server._middleware import OrjsonRoute
from rftgrade.server._models import RegisterRequest
from rftgrade.server._state import ServerState

__all__ = ["registry_router"]


def registry_router(state: ServerState) -> APIRouter:
    """``POST /v1/graders``, ``GET /v1/graders`` and ``GET /v1/graders/{ref}``."""
    router = APIRouter(route_class=OrjsonRoute)
    registry = state.registry

    @router.post("/v1/graders")
    async def register(body: RegisterRequest) -> Response:
        found = state.compile_grader(body.grader, body.name)
        if isinstance(found, JSONResponse):
            return found
        return JSONResponse({"id": found.id, "name": found.name, "type": found.type, "object": "grader"})

    @router.get("/v1/graders")
    async def list_graders() -> Response:
        names = {gid: name for name, gid in registry.names().items()}
        return JSONResponse(
            {
                "data": [
                    {"id": g.id, "name": g.name, "type": g.type, "registered_as": names.get(g.id)}
                    for g in registry.graders()
                ],
                "default": state.default_ref,
            }
        )

    @router.get("/v1/graders/{ref}")
    async def get_grader(ref: str) -> Response:
        found = state.lookup(ref)
        if isinstance(found, JSONResponse):
            return found
        return JSONResponse({"id": found.id, "grader": found.to_dict()})

    return router
