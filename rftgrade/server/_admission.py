"""Admission: what the server refuses before it grades, so that it stays up.

Two limits, both answered at once rather than queued: a body over
``max_body_bytes`` is refused with 413 before it is read whole (:class:`SizeLimit`),
and rows beyond ``max_inflight_rows`` across all requests are refused with 429 and
``Retry-After`` (:class:`Admission`), as is a request of more rows than
``max_rows_per_request`` (413). A refused client retries; an admitted one is
graded without waiting behind an unbounded queue.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi.responses import JSONResponse, Response
from starlette.types import Message, Receive, Scope, Send

from rftgrade.server._config import ServerConfig
from rftgrade.server._errors import error
from rftgrade.server._metrics import ServerMetrics

__all__ = ["Admission", "SizeLimit"]


class Admission:
    """A bounded count of rows being graded: admit a request's rows or refuse it at once."""

    def __init__(self, config: ServerConfig, metrics: ServerMetrics) -> None:
        self.limit = config.max_inflight_rows
        self.per_request = config.max_rows_per_request
        self.retry_after = config.retry_after_seconds
        self.inflight = 0
        self.metrics = metrics

    def try_acquire(self, n: int) -> bool:
        """Count ``n`` more rows in flight, unless that passes the limit (a request
        alone is always admitted: a bigger one than the limit could never be)."""
        if self.inflight + n > self.limit and self.inflight > 0:
            return False
        self.inflight += n
        self.metrics.queue.set(self.inflight)
        return True

    def release(self, n: int) -> None:
        self.inflight -= n
        self.metrics.queue.set(self.inflight)

    def refuse(self, n: int, answered: int | None = None) -> JSONResponse | None:
        """Admit ``n`` rows to grade (the caller releases them) or say why not.

        ``answered``: the rows the answer holds, duplicates included (default ``n``).
        The per-request limit counts those: a body of a million copies of one row is
        graded once but answered a million times.
        """
        rows = n if answered is None else answered
        if rows > self.per_request:
            return error(
                413,
                f"{rows:,} rows in one request; the limit is {self.per_request:,}",
                param="rows",
                code="too_many_rows",
            )
        if not self.try_acquire(n):
            self.metrics.rejected.inc()
            return error(
                429,
                f"the server is grading {self.inflight:,} rows; retry shortly",
                code="overloaded",
                headers={"Retry-After": str(self.retry_after)},
            )
        return None

    async def admitted(
        self, n: int, work: Callable[[], Awaitable[Response]], answered: int | None = None
    ) -> Response:
        """``work()``'s answer with ``n`` rows admitted while it runs, or the refusal."""
        refusal = self.refuse(n, answered)
        if refusal is not None:
            return refusal
        try:
            return await work()
        finally:
            self.release(n)


class SizeLimit:
    """ASGI middleware: refuse bodies over the limit (413) before they are read whole."""

    def __init__(self, app: Any, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        too_big = error(
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
