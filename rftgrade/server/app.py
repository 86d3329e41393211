"""The reward server: OpenAI's ``graders/run`` and ``graders/validate``, a batch endpoint,
a grader registry, OpenRLHF's remote-reward endpoint, health and Prometheus metrics.

:func:`create_app` puts the parts together; each lives in a module of its own:
admission (413/429, :mod:`._admission`), the request pipeline (:mod:`._middleware`),
errors (:mod:`._errors`) and the routes by concern (:mod:`._openai_routes`,
:mod:`._batch_routes`, :mod:`._registry_routes`, :mod:`._trainer_routes`,
:mod:`._ops_routes`). A failure while grading one sample is reward 0 plus its flag
in a 200 answer; only a malformed request (400), an unknown grader (404), a wrong
token (401), an oversized body (413) or overload (429 + ``Retry-After``) is an HTTP error.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError

from rftgrade._columns import Columns
from rftgrade._dedupe import dedupe_rows
from rftgrade._reasoning import REASONING_MODES
from rftgrade._registry import GraderRegistry
from rftgrade._toolcalls import TOOL_CALL_MODES
from rftgrade.integrations import openrlhf as _openrlhf
from rftgrade.integrations.openrlhf import DEFAULT_STRIP_TOKENS, OpenRLHFRequest, openrlhf_rows
from rftgrade.server._admission import Admission, SizeLimit
from rftgrade.server._batch_routes import batch_router
from rftgrade.server._config import ServerConfig
from rftgrade.server._errors import bad_body
from rftgrade.server._metrics import ServerMetrics
from rftgrade.server._middleware import AuthAndMeasure, CollectBetweenRequests, OrjsonRoute
from rftgrade.server._openai_routes import openai_router
from rftgrade.server._ops_routes import ops_router
from rftgrade.server._registry_routes import registry_router
from rftgrade.server._state import ServerState
from rftgrade.server._trainer_routes import trainer_router

__all__ = ["ServerConfig", "create_app", "dedupe_rows", "openrlhf_columns", "openrlhf_rows"]


def openrlhf_columns(body: OpenRLHFRequest, strip_tokens: Sequence[str] = DEFAULT_STRIP_TOKENS) -> Columns:
    """:func:`openrlhf_rows` as :class:`~rftgrade.Columns` (what the endpoint grades)."""
    return _openrlhf.request_columns(body, strip_tokens)


def create_app(config: ServerConfig | None = None, *, registry: GraderRegistry | None = None) -> FastAPI:
    """Build the ASGI app. Graders in ``config.graders`` are compiled before it serves."""
    config = config or ServerConfig()
    if config.reasoning not in REASONING_MODES:
        raise ValueError(
            f"ServerConfig.reasoning is {config.reasoning!r}; use one of {', '.join(REASONING_MODES)}"
        )
    if config.tool_calls not in TOOL_CALL_MODES:
        raise ValueError(
            f"ServerConfig.tool_calls is {config.tool_calls!r}; use one of {', '.join(TOOL_CALL_MODES)}"
        )
    registry = registry or GraderRegistry(
        sandbox=config.sandbox,
        ray=config.ray,
        max_graders=config.max_inline_graders,
        max_inline_bytes=config.max_inline_grader_mb * 1024 * 1024,
        max_named_graders=config.max_named_graders,
    )
    if registry.python_batch_timeout is None:  # the server's bound, unless its registry has one
        registry.python_batch_timeout = config.request_timeout
    metrics = ServerMetrics(registry.stats)
    for name, path in config.graders.items():
        registry.add(path, name=name)
    state = ServerState(
        config=config,
        registry=registry,
        metrics=metrics,
        admission=Admission(config, metrics),
        default_ref=config.default_grader or next(iter(config.graders), None),
        strip_tokens=_openrlhf.merged_tokens(config.strip_tokens),
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        await registry.aclose()

    app = FastAPI(
        title="rftgrade reward server",
        version="0.1.0",
        lifespan=lifespan,
        description="OpenAI-compatible grader endpoints and trainer reward endpoints.",
    )
    app.router.route_class = OrjsonRoute
    app.state.registry = registry
    app.state.metrics = metrics
    app.state.config = config
    app.state.server = state
    app.exception_handler(RequestValidationError)(bad_body)
    for router in (
        openai_router(state),
        registry_router(state),
        batch_router(state),
        trainer_router(state),
        ops_router(state),
    ):
        app.include_router(router)

    app.add_middleware(AuthAndMeasure, api_key=config.api_key, metrics=metrics)
    app.add_middleware(CollectBetweenRequests)
    # Added last, so it runs first: oversized bodies are refused before anything reads them.
    app.add_middleware(SizeLimit, limit=config.max_body_bytes)
    return app
