"""One way for every trainer adapter to get rewards: in-process, or from ``rftgrade serve``.

In-process, graders are compiled once per process and share one sandbox pool
and judge (:class:`~rftgrade._registry.GraderRegistry`). Remote, rows go to a
running server's ``POST /v1/grade``. Both return OpenAI-shaped result dicts, in
order, and never raise for a bad sample.
"""

from __future__ import annotations

import asyncio
import os
import threading
from dataclasses import dataclass
from typing import Any

from rftgrade._columns import Columns
from rftgrade._json import dumps, loads

__all__ = ["RewardSource", "batch_body", "grade_rewards", "grade_rows"]


@dataclass(frozen=True)
class RewardSource:
    """Where rewards come from. Picklable, so trainers can ship it to other processes.

    Attributes:
        grader: path to grader JSON (in-process), or for a server also a registered
            id or name; ``None`` uses the server's default grader.
        server_url: base URL of ``rftgrade serve`` (e.g. ``http://127.0.0.1:8000``);
            ``None`` grades in-process.
        api_key: bearer token for the server.
        sandbox: sandbox backend for in-process python graders.
        timeout: seconds a whole call may take before its rows are reported failed.
    """

    grader: str | None = None
    server_url: str | None = None
    api_key: str | None = None
    sandbox: str = "auto"
    timeout: float = 300.0

    @classmethod
    def from_env(cls) -> RewardSource:
        """``RFTGRADE_GRADER``, ``RFTGRADE_SERVER_URL``, ``RFTGRADE_API_KEY``,
        ``RFTGRADE_SANDBOX``, ``RFTGRADE_TIMEOUT``."""
        return cls(
            grader=os.environ.get("RFTGRADE_GRADER"),
            server_url=os.environ.get("RFTGRADE_SERVER_URL"),
            api_key=os.environ.get("RFTGRADE_API_KEY"),
            sandbox=os.environ.get("RFTGRADE_SANDBOX", "auto"),
            timeout=float(os.environ.get("RFTGRADE_TIMEOUT", "300")),
        )


_REGISTRIES: dict[str, Any] = {}
_LOCK = threading.Lock()


def _registry(sandbox: str) -> Any:
    from rftgrade._registry import GraderRegistry

    # RFTGRADE_RAY=auto: inside a verl job (already a Ray cluster) python graders run
    # on the cluster's nodes instead of this process's machine.
    ray = os.environ.get("RFTGRADE_RAY") or None
    key = f"{sandbox}|{ray or ''}"
    with _LOCK:
        if key not in _REGISTRIES:
            _REGISTRIES[key] = GraderRegistry(sandbox=sandbox, ray=ray)
        return _REGISTRIES[key]


def _failed(message: str) -> dict[str, Any]:
    from rftgrade._result import GradeResult

    result = GradeResult(reward=0.0, name="", type="")
    result.fail("other_error", message)
    return result.to_dict()


async def grade_rows(source: RewardSource, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Grade ``rows`` (``{"sample", "item"}``) and return one response dict each."""
    if not rows:
        return []
    try:
        async with asyncio.timeout(source.timeout):
            if source.server_url:
                return await _remote(source, rows)
            if not source.grader:
                raise ValueError("no grader: set RFTGRADE_GRADER to a grader JSON path")
            grader = _registry(source.sandbox).add(source.grader)
            return [r.to_dict() for r in await grader.arun_batch(_in_process(rows))]
    except TimeoutError:
        return [_failed(f"no reward within {source.timeout:g}s") for _ in rows]
    except Exception as exc:  # the trainer must never see an exception from its reward
        return [_failed(f"{type(exc).__name__}: {exc}") for _ in rows]


async def grade_rewards(source: RewardSource, rows: list[dict[str, Any]]) -> list[tuple[float, bool]]:
    """``(reward, failed)`` for each row: all a trainer that wants numbers reads.

    Remote, it asks the server for compact answers (no full result per row to
    build, send and parse); in-process, it reads the results directly.
    """
    if not rows:
        return []
    try:
        async with asyncio.timeout(source.timeout):
            if source.server_url:
                answer = await _post(source, {**batch_body(rows), "compact": True})
                failed = {int(f["index"]) for f in answer.get("failures", [])}
                return [(float(r), i in failed) for i, r in enumerate(answer["rewards"])]
            if not source.grader:
                raise ValueError("no grader: set RFTGRADE_GRADER to a grader JSON path")
            grader = _registry(source.sandbox).add(source.grader)
            return [(r.reward, not r.ok) for r in await grader.arun_batch(_in_process(rows))]
    except Exception:  # a timeout included: the trainer must never see an exception from its reward
        return [(0.0, True) for _ in rows]


async def _remote(source: RewardSource, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = (await _post(source, batch_body(rows)))["results"]
    return results


def batch_body(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """``rows`` as a ``POST /v1/grade`` body: as ``groups`` when neighbouring rows
    share their item (a GRPO batch: a prompt's samples side by side, each item sent
    once instead of once per sample, ~40% of the body here), else as ``rows``."""
    groups: list[dict[str, Any]] = []
    for row in rows:
        if type(row) is not dict or "sample" not in row or len(row) > 2:
            return {"rows": rows}  # only plain rows are regrouped: the rest keep their own flags
        item = row.get("item")
        last = groups[-1] if groups else None
        if last is not None and (last["item"] is item or last["item"] == item):
            last["samples"].append(row["sample"])
        else:
            groups.append({"item": item, "samples": [row["sample"]]})
    return {"groups": groups} if 2 * len(groups) <= len(rows) else {"rows": rows}


def _in_process(rows: list[dict[str, Any]]) -> list[dict[str, Any]] | Columns:
    """``rows`` for an in-process grader: neighbours with equal items (a prompt's
    completions; trainers build one item dict per sample) get one item object, so
    that the sandbox sends and parses it once per chunk (see :func:`batch_body`)."""
    body = batch_body(rows)
    if "groups" not in body:
        return rows
    return Columns.from_groups((group["item"], group["samples"]) for group in body["groups"])


async def _post(source: RewardSource, body: dict[str, Any]) -> dict[str, Any]:
    import httpx

    headers = {"content-type": "application/json"}
    if source.api_key:
        headers["authorization"] = f"Bearer {source.api_key}"
    if source.grader:
        body = {**body, "grader": source.grader}
    content = dumps(body)
    url = source.server_url.rstrip("/") + "/v1/grade"  # type: ignore[union-attr]
    async with httpx.AsyncClient(timeout=source.timeout, headers=headers) as client:
        for attempt in range(6):
            response = await client.post(url, content=content)
            if response.status_code == 429:
                await asyncio.sleep(float(response.headers.get("retry-after", "1")) * (1 + attempt / 2))
                continue
            response.raise_for_status()
            answer: dict[str, Any] = loads(response.content)
            return answer
    raise RuntimeError("the reward server stayed overloaded (429) through 6 attempts")
