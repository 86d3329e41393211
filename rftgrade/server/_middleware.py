"""The reward server's request pipeline: bearer-token check and metrics, the
garbage-collector pause, and the route class that parses bodies with orjson.

Plain ASGI middleware rather than ``@app.middleware("http")``, which runs every
request in a task of its own and pipes the answer through a memory stream.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request
from fastapi.responses import Response
from fastapi.routing import APIRoute
from starlette.background import BackgroundTask
from starlette.types import Message, Receive, Scope, Send

from rftgrade._gc import gc_paused
from rftgrade._json import loads
from rftgrade.integrations import openrlhf as _openrlhf
from rftgrade.server._body import parse_grade_body
from rftgrade.server._errors import error
from rftgrade.server._metrics import ServerMetrics

__all__ = ["COLUMNS", "AuthAndMeasure", "CollectBetweenRequests", "OrjsonRoute"]

COLUMNS = "rftgrade.columns"
"""Where a ``/v1/grade`` body's rows wait as :class:`~rftgrade.Columns` (request scope)."""


class AuthAndMeasure:
    """ASGI middleware: check the bearer token on ``/v1`` paths; count every request
    and time it until its last byte is sent (a streamed answer included)."""

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
                await error(
                    401, "wrong token in the path /v1/openrlhf/<token>/reward", code="invalid_api_key"
                )(scope, receive, send)
                return
        elif self.api_key is not None and path.startswith("/v1"):
            header = next((v for k, v in scope.get("headers") or () if k == b"authorization"), b"")
            token = header[7:] if header[:7].lower() == b"bearer " else b""
            if not hmac.compare_digest(token, self.api_key):
                self.metrics.requests.labels(path, "401").inc()
                await error(401, "missing or wrong bearer token", code="invalid_api_key")(
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


class CollectBetweenRequests:
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
                self._json, self.scope[COLUMNS] = parsed
        return self._json


class OrjsonRoute(APIRoute):
    """The route class of every route: bodies parsed by :class:`_OrjsonRequest`."""

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
