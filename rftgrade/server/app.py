"""The reward server: OpenAI's ``graders/run`` and ``graders/validate``, a batch endpoint,
OpenRLHF's remote-reward endpoint, health and Prometheus metrics.

Routes only translate HTTP to the library API (:class:`~rftgrade._registry.GraderRegistry`
and :class:`~rftgrade.Grader`) and back; they never grade on their own. A failure
while grading one sample is reward 0 plus its flag in a 200 answer; only a
malformed request (400), an unknown grader (404), a wrong token (401), an
oversized body (413) or overload (429 + ``Retry-After``) is an HTTP error.
"""

from __future__ import annotations

import asyncio
import hmac
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from fastapi.routing import APIRoute
from prometheus_client import generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from starlette.background import BackgroundTask
from starlette.types import Message, Receive, Scope, Send

from rftgrade._columns import Columns
from rftgrade._exceptions import BackendUnavailableError, GraderValidationError
from rftgrade._gc import gc_paused
from rftgrade._grader import Grader, validate
from rftgrade._json import dumps, loads
from rftgrade._load import grader_to_dict
from rftgrade._rawitem import RawItem
from rftgrade._registry import GraderRegistry, UnknownGraderError
from rftgrade._result import GradeResult
from rftgrade.integrations import openrlhf as _openrlhf
from rftgrade.integrations.openrlhf import DEFAULT_STRIP_TOKENS
from rftgrade.server._body import parse_grade_body
from rftgrade.server._dedupe import dedupe_columns, dedupe_rows
from rftgrade.server._metrics import ServerMetrics
from rftgrade.server._models import (
    GradeRequest,
    OpenRLHFRequest,
    RegisterRequest,
    RunRequest,
    ValidateRequest,
)

__all__ = ["ServerConfig", "create_app", "dedupe_rows", "openrlhf_columns", "openrlhf_rows"]


@dataclass
class ServerConfig:
    """Settings of one server; every limit has a safe default."""

    graders: dict[str, str] = field(default_factory=dict)
    """Graders to compile at start-up: name -> path to grader JSON."""
    default_grader: str | None = None
    """Name or id used when a request names none (default: the first preloaded grader)."""
    sandbox: str = "auto"
    ray: str | None = None
    """A Ray cluster (``auto`` or ``HOST:PORT``) whose nodes run the python graders."""
    api_key: str | None = None
    max_body_bytes: int = 64 * 1024 * 1024
    max_inflight_rows: int = 200_000
    """Rows admitted at once across all requests; more are refused with 429."""
    max_rows_per_request: int = 100_000
    stream_chunk: int = 512
    retry_after_seconds: int = 2
    strip_tokens: tuple[str, ...] = ()
    """Special tokens removed from OpenRLHF samples besides the default ones (``--strip-tokens``)."""
    request_timeout: float | None = 600.0
    """Seconds a request's python samples may take together (a streamed request: each
    chunk); the rest then fail with ``unresponsive_reward_error``. ``None``: no bound."""


class _Admission:
    """A bounded queue of rows: admit a request's rows or refuse it at once."""

    def __init__(self, limit: int, metrics: ServerMetrics) -> None:
        self.limit = limit
        self.inflight = 0
        self.metrics = metrics

    def try_acquire(self, n: int) -> bool:
        if self.inflight + n > self.limit and self.inflight > 0:
            return False
        self.inflight += n
        self.metrics.queue.set(self.inflight)
        return True

    def release(self, n: int) -> None:
        self.inflight -= n
        self.metrics.queue.set(self.inflight)


def _error(
    status: int,
    message: str,
    *,
    param: str | None = None,
    code: str | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    kind = {
        400: "invalid_request_error",
        401: "authentication_error",
        404: "not_found_error",
        413: "request_too_large",
        429: "rate_limit_error",
    }.get(status, "server_error")
    return JSONResponse(
        {"error": {"message": message, "type": kind, "param": param, "code": code}},
        status_code=status,
        headers=headers,
    )


def _problems_error(exc: GraderValidationError) -> JSONResponse:
    first = exc.problems[0]
    message = "; ".join(str(p) for p in exc.problems)
    return _error(
        400,
        f"invalid grader: {message}",
        param=f"grader.{first.path}" if first.path else "grader",
        code="invalid_grader",
    )


def openrlhf_rows(
    body: OpenRLHFRequest, strip_tokens: Sequence[str] = DEFAULT_STRIP_TOKENS
) -> list[dict[str, Any]]:
    """OpenRLHF's request as rftgrade rows (see :func:`rftgrade.integrations.openrlhf.openrlhf_columns`)."""
    return openrlhf_columns(body, strip_tokens).rows()


def openrlhf_columns(body: OpenRLHFRequest, strip_tokens: Sequence[str] = DEFAULT_STRIP_TOKENS) -> Columns:
    """:func:`openrlhf_rows` as :class:`~rftgrade.Columns` (what the endpoint grades)."""
    return _openrlhf.openrlhf_columns(body.query, body.prompts, body.labels, strip_tokens)


class _SizeLimit:
    """ASGI middleware: refuse bodies over the limit (413) before they are read whole."""

    def __init__(self, app: Any, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        too_big = _error(
            413, f"request body over {self.limit:,} bytes; send fewer rows per request", code="body_too_large"
        )
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await too_big(scope, receive, send)
            return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise _BodyTooLarge
            return message

        try:
            await self.app(scope, limited, send)
        except _BodyTooLarge:
            await too_big(scope, receive, send)


class _BodyTooLarge(Exception):
    pass


class _AuthAndMeasure:
    """ASGI middleware: check the bearer token on ``/v1`` paths; count every request
    and time it until its last byte is sent (a streamed answer included).

    Plain ASGI rather than ``@app.middleware("http")``, which runs every request in
    a task of its own and pipes the answer through a memory stream.
    """

    def __init__(self, app: Any, *, api_key: str | None, metrics: ServerMetrics) -> None:
        self.app, self.metrics = app, metrics
        self.api_key = api_key.encode() if api_key else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        start = time.perf_counter()
        in_path = _openrlhf.path_token(path)
        if in_path is not None:
            # OpenRLHF cannot send headers: its URL carries the token.
            if self.api_key is not None and not _openrlhf.token_matches(in_path, self.api_key):
                self.metrics.requests.labels(_openrlhf.TOKEN_ROUTE, "401").inc()  # never the token itself
                await _error(
                    401, "wrong token in the path /v1/openrlhf/<token>/reward", code="invalid_api_key"
                )(scope, receive, send)
                return
        elif self.api_key is not None and path.startswith("/v1"):
            header = next((v for k, v in scope.get("headers") or () if k == b"authorization"), b"")
            token = header[7:] if header[:7].lower() == b"bearer " else b""
            if not hmac.compare_digest(token, self.api_key):
                self.metrics.requests.labels(path, "401").inc()
                await _error(401, "missing or wrong bearer token", code="invalid_api_key")(
                    scope, receive, send
                )
                return
        status = 500  # what the client gets if the app fails before answering

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            route = scope.get("route")
            endpoint = route.path if route is not None else path
            self.metrics.requests.labels(endpoint, str(status)).inc()
            self.metrics.latency.labels(endpoint).observe(time.perf_counter() - start)


class _CollectBetweenRequests:
    """ASGI middleware: pause the cyclic garbage collector while a POST is handled.

    A 8,192-row batch is ~200,000 objects parsed from JSON, none of them garbage
    until the answer is sent; collections triggered while they were built walked
    them again and again (a quarter of the server's time). The pause is the
    process-wide one of :func:`rftgrade._gc.gc_paused`: with requests overlapping,
    the collector runs whenever the request that paused it finishes, so under
    steady load it still runs between requests.
    """

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") != "POST":
            await self.app(scope, receive, send)
            return
        with gc_paused():
            await self.app(scope, receive, send)


def _compact(grader_id: str, results: Sequence[GradeResult]) -> dict[str, Any]:
    """``/v1/grade`` with ``"compact": true``: what a trainer reads, without a full
    OpenAI-shaped result per row (a tenth of the bytes to write and to parse)."""
    failures = [
        {"index": i, "flags": r.flags(), "messages": list(r.error_messages)}
        for i, r in enumerate(results)
        if not r.ok
    ]
    return {
        "object": "list",
        "grader_id": grader_id,
        "rewards": [r.reward for r in results],
        "failures": failures,
    }


_GROUPS_SPREAD = 16
"""A ``groups`` body may stand for rows ``_GROUPS_SPREAD`` times the body limit: each
sample's item is still compared or parsed per sample in the sandbox, so a big item
shared by many samples costs what sending it with each would have."""


def _spread_items_bytes(columns: Columns) -> int:
    """The size of the items as rows would carry them (each item once per sample)."""
    return sum(len(item.data) for item in columns.items if type(item) is RawItem)


_COLUMNS = "rftgrade.columns"
"""Where a ``/v1/grade`` body's rows wait as :class:`~rftgrade.Columns` (request scope)."""


class _OrjsonRequest(Request):
    """Parses JSON bodies with orjson (the stdlib parser was a third of the server's
    time on a 8,192-row batch), and ``/v1/grade`` bodies with their items left as
    JSON text (see :mod:`rftgrade.server._body`)."""

    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            data = await self.body()
            parsed = parse_grade_body(data) if self.scope.get("path") == "/v1/grade" else None
            if parsed is None:
                self._json = loads(data)
            else:
                self._json, self.scope[_COLUMNS] = parsed
        return self._json


class _OrjsonRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def parse_with_orjson(request: Request) -> Response:
            ours = _OrjsonRequest(request.scope, request.receive)
            response = await handler(ours)
            parsed = ours.__dict__.pop("_json", None)
            if parsed is not None and response.background is None:
                # Freeing a 8,192-row body object by object takes ~20 ms: let the
                # client have its answer first.
                response.background = BackgroundTask(_release, parsed)
            return response

        return parse_with_orjson


def _release(value: Any) -> None:
    """The background task that holds a parsed body until its answer is sent."""
    del value


def _fast_json(payload: Any) -> Response:
    return Response(dumps(payload), media_type="application/json")


def create_app(config: ServerConfig | None = None, *, registry: GraderRegistry | None = None) -> FastAPI:
    """Build the ASGI app. Graders in ``config.graders`` are compiled before it serves."""
    config = config or ServerConfig()
    registry = registry or GraderRegistry(sandbox=config.sandbox, ray=config.ray)
    if registry.python_batch_timeout is None:  # the server's bound, unless its registry has one
        registry.python_batch_timeout = config.request_timeout
    metrics = ServerMetrics(registry.stats)
    admission = _Admission(config.max_inflight_rows, metrics)
    for name, path in config.graders.items():
        registry.add(path, name=name)
    default_ref = config.default_grader or next(iter(config.graders), None)

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
    app.router.route_class = _OrjsonRoute
    app.state.registry = registry
    app.state.metrics = metrics
    app.state.config = config

    @app.exception_handler(RequestValidationError)
    async def bad_body(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid body"}
        loc = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        if first.get("type") == "json_invalid":
            return _error(400, f"the body is not valid JSON: {first.get('msg')}", code="invalid_json")
        return _error(400, f"{loc or 'body'}: {first.get('msg')}", param=loc or None, code="invalid_body")

    def record(grader: Grader, results: Sequence[GradeResult]) -> None:
        metrics.samples.labels(grader.type).inc(len(results))
        for result in results:
            for flag in result.flags():
                metrics.errors.labels(flag).inc()

    async def grade(grader: Grader, rows: list[Any] | Columns) -> list[GradeResult]:
        if grader.compiled.is_sync and len(rows) > 64:
            # Deterministic graders run inline; keep the event loop free for other clients.
            return await asyncio.to_thread(grader.run_batch, rows)
        return await grader.arun_batch(rows)

    def lookup(ref: str | dict[str, Any] | None) -> Grader | JSONResponse:
        ref = ref if ref is not None else default_ref
        if ref is None:
            return _error(
                400,
                "no grader given and the server has no default; pass `grader` (JSON or id) or "
                "start the server with --grader NAME=path.json",
                param="grader",
            )
        if not isinstance(ref, str):
            return compile_grader(ref)
        try:
            return registry.get(ref)
        except UnknownGraderError:
            return _error(
                404,
                f"no grader registered as {ref!r}; register it with POST /v1/graders",
                param="grader",
                code="unknown_grader",
            )

    def compile_grader(source: dict[str, Any], name: str | None = None) -> Grader | JSONResponse:
        """Compile (once) and register grader JSON, or the 400 that says why not."""
        try:
            return registry.add(source, name=name)
        except GraderValidationError as exc:
            return _problems_error(exc)
        except BackendUnavailableError as exc:
            return _error(400, str(exc), param="grader", code="backend_unavailable")

    def refuse(n: int, answered: int | None = None) -> JSONResponse | None:
        """Admit ``n`` rows to grade (the caller releases them) or say why not.

        ``answered``: the rows the answer holds, duplicates included (default ``n``).
        The per-request limit counts those: a body of a million copies of one row is
        graded once but answered a million times.
        """
        rows = n if answered is None else answered
        if rows > config.max_rows_per_request:
            return _error(
                413,
                f"{rows:,} rows in one request; the limit is {config.max_rows_per_request:,}",
                param="rows",
                code="too_many_rows",
            )
        if not admission.try_acquire(n):
            metrics.rejected.inc()
            return _error(
                429,
                f"the server is grading {admission.inflight:,} rows; retry shortly",
                code="overloaded",
                headers={"Retry-After": str(config.retry_after_seconds)},
            )
        return None

    async def admitted(
        n: int, work: Callable[[], Awaitable[Response]], answered: int | None = None
    ) -> Response:
        refusal = refuse(n, answered)
        if refusal is not None:
            return refusal
        try:
            return await work()
        finally:
            admission.release(n)

    # -- OpenAI-compatible -----------------------------------------------------
    @app.post("/v1/fine_tuning/alpha/graders/run")
    async def run(body: RunRequest) -> Response:
        try:
            grader = registry.add(body.grader)
        except GraderValidationError as exc:
            if all(p.kind == "formula" for p in exc.problems):
                # OpenAI answers a bad formula with a flagged result, not an HTTP error.
                result = GradeResult(reward=0.0, name=str(body.grader.get("name", "")), type="multi")
                result.fail("formula_parse_error", "; ".join(str(p) for p in exc.problems))
                return _fast_json(result.to_answer())
            return _problems_error(exc)
        except BackendUnavailableError as exc:
            return _error(400, str(exc), param="grader", code="backend_unavailable")

        async def work() -> Response:
            (result,) = await grade(grader, [{"sample": body.model_sample, "item": body.item or {}}])
            record(grader, [result])
            return _fast_json(result.to_answer())

        return await admitted(1, work)

    @app.post("/v1/fine_tuning/alpha/graders/validate")
    async def validate_route(body: ValidateRequest) -> Response:
        report = validate(body.grader)
        if not report.ok or report.spec is None:
            return _problems_error(GraderValidationError(report.problems))
        return JSONResponse({"grader": grader_to_dict(report.spec)})

    # -- compiled graders --------------------------------------------------------
    @app.post("/v1/graders")
    async def register(body: RegisterRequest) -> Response:
        found = compile_grader(body.grader, body.name)
        if isinstance(found, JSONResponse):
            return found
        return JSONResponse({"id": found.id, "name": found.name, "type": found.type, "object": "grader"})

    @app.get("/v1/graders")
    async def list_graders() -> Response:
        names = {gid: name for name, gid in registry.names().items()}
        return JSONResponse(
            {
                "data": [
                    {"id": g.id, "name": g.name, "type": g.type, "registered_as": names.get(g.id)}
                    for g in registry.graders()
                ],
                "default": default_ref,
            }
        )

    @app.get("/v1/graders/{ref}")
    async def get_grader(ref: str) -> Response:
        found = lookup(ref)
        if isinstance(found, JSONResponse):
            return found
        return JSONResponse({"id": found.id, "grader": found.to_dict()})

    @app.post("/v1/grade")
    async def grade_rows(body: GradeRequest, request: Request) -> Response:
        found = lookup(body.grader)
        if isinstance(found, JSONResponse):
            return found
        grader = found
        columns: Columns | None = request.scope.get(_COLUMNS)
        if columns is not None and body.groups is not None:
            spread = _spread_items_bytes(columns)
            if spread > _GROUPS_SPREAD * config.max_body_bytes:
                return _error(
                    413,
                    f"groups hand their items to {spread:,} bytes' worth of rows (each item counted once "
                    f"per sample); the limit is {_GROUPS_SPREAD * config.max_body_bytes:,}: send fewer "
                    "samples per big item, or split the batch",
                    param="groups",
                    code="body_too_large",
                )
        batch: list[Any] | Columns
        where: list[int] | None
        if columns is not None:
            batch, where = dedupe_columns(columns)
        else:
            batch, where = dedupe_rows(body.all_rows())
        answered = len(where) if where is not None else len(batch)  # duplicates included
        if not body.stream:

            async def work() -> Response:
                graded = await grade(grader, batch)
                record(grader, graded)
                if body.compact:
                    return _fast_json(
                        _compact(grader.id, graded if where is None else [graded[j] for j in where])
                    )
                dicts = [r.to_answer() for r in graded]  # once per distinct row
                return _fast_json(
                    {
                        "object": "list",
                        "grader_id": grader.id,
                        "results": dicts if where is None else [dicts[j] for j in where],
                    }
                )

            return await admitted(len(batch), work, answered=answered)

        unique_rows = batch.rows() if isinstance(batch, Columns) else batch
        if where is None:
            where = list(range(len(unique_rows)))

        n = len(unique_rows)
        refusal = refuse(n, answered=answered)
        if refusal is not None:
            return refusal
        positions: dict[int, list[int]] = {}
        for i, j in enumerate(where):
            positions.setdefault(j, []).append(i)

        async def chunk_task(start: int) -> tuple[int, list[GradeResult]]:
            return start, await grade(grader, unique_rows[start : start + config.stream_chunk])

        async def stream() -> AsyncIterator[bytes]:
            try:
                tasks = [asyncio.ensure_future(chunk_task(s)) for s in range(0, n, config.stream_chunk)]
                for next_done in asyncio.as_completed(tasks):
                    start, results = await next_done
                    record(grader, results)
                    lines = []
                    for offset, result in enumerate(results):
                        payload = result.to_answer()
                        for index in positions[start + offset]:
                            lines.append(dumps({"index": index, "result": payload}) + b"\n")
                    yield b"".join(lines)
            finally:
                admission.release(n)

        return StreamingResponse(stream(), media_type="application/x-ndjson")

    # -- trainers ----------------------------------------------------------------
    strip_tokens = _openrlhf.merged_tokens(config.strip_tokens)

    @app.post("/v1/openrlhf/reward")
    @app.post(_openrlhf.TOKEN_ROUTE)  # checked by _AuthAndMeasure, before the body is read
    async def openrlhf(body: OpenRLHFRequest, grader: str | None = None) -> Response:
        found = lookup(grader)
        if isinstance(found, JSONResponse):
            return found
        rows = openrlhf_columns(body, strip_tokens)

        async def work() -> Response:
            results = await grade(found, rows)
            record(found, results)
            return _fast_json(_openrlhf.openrlhf_answer(results))

        return await admitted(len(rows), work)

    # -- operations --------------------------------------------------------------
    @app.get("/healthz")
    async def healthz() -> Response:
        return JSONResponse(
            {"status": "ok", "graders": len(registry.graders()), "inflight_rows": admission.inflight}
        )

    @app.get("/metrics")
    async def prometheus() -> Response:
        return PlainTextResponse(generate_latest(metrics.registry).decode(), media_type=CONTENT_TYPE_LATEST)

    app.add_middleware(_AuthAndMeasure, api_key=config.api_key, metrics=metrics)
    app.add_middleware(_CollectBetweenRequests)
    # Added last, so it runs first: oversized bodies are refused before anything reads them.
    app.add_middleware(_SizeLimit, limit=config.max_body_bytes)
    return app
