"""Operations routes: ``/healthz`` for probes and ``/metrics`` for Prometheus."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from prometheus_client import generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from rftgrade.server._state import ServerState

__all__ = ["ops_router"]


def ops_router(state: ServerState) -> APIRouter:
    """``GET /healthz`` and ``GET /metrics``."""
    router = APIRouter()

    @router.get("/healthz")
    async def healthz() -> Response:
        return JSONResponse(
            {
                "status": "ok",
                "graders": len(state.registry.graders()),
                "inflight_rows": state.admission.inflight,
            }
        )

    @router.get("/metrics")
    async def prometheus() -> Response:
        text = generate_latest(state.metrics.registry).decode()
        return PlainTextResponse(text, media_type=CONTENT_TYPE_LATEST)

    return router
