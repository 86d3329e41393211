"""The batch route: ``POST /v1/grade``, many rows with one grader.

Rows come as ``rows`` or GRPO ``groups``; repeated rows are graded once
(:mod:`rftgrade._dedupe`). The answer is a full OpenAI-shaped result per
row, ``"compact": true`` rewards plus failures, or ``"stream": true`` NDJSON lines
as chunks finish.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from rftgrade._columns import Columns
from rftgrade._dedupe import dedupe_columns, dedupe_rows
from rftgrade._rawitem import RawItem
from rftgrade._result import GradeResult
from rftgrade.server._errors import error, fast_json
from rftgrade.server._middleware import COLUMNS, OrjsonRoute
from rftgrade.server._models import GradeRequest
from rftgrade.server._state import ServerState

__all__ = ["batch_router"]

_GROUPS_SPREAD = 16
"""A ``groups`` body may stand for rows ``_GROUPS_SPREAD`` times the body limit: each
sample's item is still compared or parsed per sample in the sandbox, so a big item
shared by many samples costs what sending it with each would have."""


def _spread_items_bytes(columns: Columns) -> int:
    """The size of the items as rows would carry them (each item once per sample)."""
    return sum(len(item.data) for item in columns.items if type(item) is RawItem)


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


def batch_router(state: ServerState) -> APIRouter:
    """``POST /v1/grade``."""
    router = APIRouter(route_class=OrjsonRoute)
    config, admission = state.config, state.admission

    @router.post("/v1/grade")
    async def grade_rows(body: GradeRequest, request: Request) -> Response:
        found = state.lookup(body.grader)
        if isinstance(found, JSONResponse):
            return found
        grader = found
        columns: Columns | None = request.scope.get(COLUMNS)
        if columns is not None and body.groups is not None:
            spread = _spread_items_bytes(columns)
            if spread > _GROUPS_SPREAD * config.max_body_bytes:
                return error(
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
                graded = await state.grade(grader, batch)
                state.record(grader, graded)
                if body.compact:
                    return fast_json(
                        _compact(grader.id, graded if where is None else [graded[j] for j in where])
                    )
                dicts = [r.to_answer() for r in graded]  # once per distinct row
                return fast_json(
                    {
                        "object": "list",
                        "grader_id": grader.id,
                        "results": dicts if where is None else [dicts[j] for j in where],
                    }
                )

            return await admission.admitted(len(batch), work, answered=answered)

        unique_rows = batch.rows() if isinstance(batch, Columns) else batch
        if where is None:
            where = list(range(len(unique_rows)))

        n = len(unique_rows)
        refusal = admission.refuse(n, answered=answered)
        if refusal is not None:
            return refusal
        positions: dict[int, list[int]] = {}
        for i, j in enumerate(where):
            positions.setdefault(j, []).append(i)

        async def chunk_task(start: int) -> tuple[int, list[GradeResult]]:
            return start, await state.grade(grader, unique_rows[start : start + config.stream_chunk])

        async def stream() -> AsyncIterator[bytes]:
            try:
                tasks = [asyncio.ensure_future(chunk_task(s)) for s in range(0, n, config.stream_chunk)]
                for next_done in asyncio.as_completed(tasks):
                    start, results = await next_done
                    state.record(grader, results)
                    lines = []
                    for offset, result in enumerate(results):
                        # Encoded once, however many copies of the row the body held.
                        payload = result.to_answer_json()
                        for index in positions[start + offset]:
                            lines.append(b'{"index":%d,"result":%b}\n' % (index, payload))
                    yield b"".join(lines)
            finally:
                admission.release(n)

        return StreamingResponse(stream(), media_type="application/x-ndjson")

    return router
