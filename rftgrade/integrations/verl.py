"""verl: a custom reward function.

Point verl at this module (``reward.custom_reward_function.path`` = this file's path,
``name`` = ``compute_score``; in verl <= 0.8 the top-level ``custom_reward_function``)
and choose the grader with ``RFTGRADE_GRADER`` (and ``RFTGRADE_SERVER_URL`` to use a
running ``rftgrade serve``). See ``docs/trainers/verl.md``.

Each call grades one sample; calls that arrive together (verl's async reward loop
runs them concurrently) are gathered into one batch for the grader.
"""

from __future__ import annotations

import asyncio
from typing import Any

from rftgrade.integrations._client import RewardSource, grade_rows

__all__ = ["compute_score", "to_verl"]

_pending: list[tuple[dict[str, Any], asyncio.Future[dict[str, Any]]]] = []
_flush: asyncio.TimerHandle | None = None
_SOURCE: RewardSource | None = None
_WINDOW = 0.005
_tasks: set[asyncio.Future[None]] = set()


def _source() -> RewardSource:
    global _SOURCE
    if _SOURCE is None:
        _SOURCE = RewardSource.from_env()
    return _SOURCE


def to_verl(result: dict[str, Any]) -> dict[str, Any]:
    """A response dict as verl's reward dict: ``score`` plus keys that are the same for every sample."""
    out: dict[str, Any] = {"score": float(result["reward"])}
    errors = result["metadata"]["errors"]
    out["rftgrade_error"] = float(any(v is True for v in errors.values()))
    for key, value in sorted(result.get("sub_rewards", {}).items()):
        out[f"rftgrade_{key}"] = float(value)
    return out


async def _run_batch(batch: list[tuple[dict[str, Any], asyncio.Future[dict[str, Any]]]]) -> None:
    results = await grade_rows(_source(), [row for row, _ in batch])
    for (_, future), result in zip(batch, results, strict=True):
        if not future.done():
            future.set_result(result)


def _dispatch() -> None:
    global _flush
    batch = list(_pending)
    _pending.clear()
    _flush = None
    if batch:
        # Keep a reference: the event loop holds tasks only weakly.
        task = asyncio.ensure_future(_run_batch(batch))
        _tasks.add(task)
        task.add_done_callback(_tasks.discard)


async def compute_score(
    data_source: str,
    solution_str: str,
    ground_truth: Any,
    extra_info: dict[str, Any] | None = None,
    **kwargs: Any,
) -> dict[str, Any]:
    """verl's reward entry point: never raises; ``score`` is 0 for a failed sample.

    The sample is ``solution_str``; the item is ``extra_info`` plus ``data_source``,
    ``ground_truth`` and ``reference_answer`` (= ``ground_truth``).
    """
    global _flush
    item = {
        **(extra_info or {}),
        "data_source": data_source,
        "ground_truth": ground_truth,
        "reference_answer": ground_truth,
    }
    loop = asyncio.get_running_loop()
    future: asyncio.Future[dict[str, Any]] = loop.create_future()
    _pending.append(({"sample": solution_str, "item": item}, future))
    if _flush is None:
        _flush = loop.call_later(_WINDOW, _dispatch)
    return to_verl(await future)
