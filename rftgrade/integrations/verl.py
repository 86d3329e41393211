"""verl: custom reward functions.

Point verl at this module (``reward.custom_reward_function.path`` = this file's path;
in verl <= 0.8 the top-level ``custom_reward_function``) and choose the grader with
``RFTGRADE_GRADER`` (and ``RFTGRADE_SERVER_URL`` to use a running ``rftgrade serve``).
``name`` picks the entry point (see ``docs/trainers/verl.md``):

- ``compute_score`` (default): synchronous; works in every reward manager verl ships
  (``naive``, ``dapo``, ``batch`` (called with plural arguments, it grades the list in
  one request), ``prime`` (called positionally, it returns a float), ``remote``, and
  the reward loop, which runs it in a thread pool);
- ``compute_score_async``: the same as a coroutine function, for the reward loop only;
- ``compute_score_batch``: the ``batch`` manager's list form, by name.

Single-sample calls that arrive together (the reward loop runs many at once, from
several threads for the sync form) are gathered into one batch for the grader.
A misconfigured grader raises when verl loads this module (or at the first call),
with the fix; a failing server is logged (see :mod:`rftgrade.integrations._client`).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from rftgrade.integrations._client import RewardSource, grade_rows, run_sync, sub_rewards
from rftgrade.integrations._gather import Gatherer
from rftgrade.integrations.trainer_data import ITEM_KEY, exported_item

__all__ = ["compute_score", "compute_score_async", "compute_score_batch", "to_verl"]

_STATE: tuple[RewardSource, Gatherer] | None = None
_STATE_LOCK = threading.Lock()


def _state() -> tuple[RewardSource, Gatherer]:
    """The source from the environment, checked once (raises if misconfigured)."""
    global _STATE
    with _STATE_LOCK:
        if _STATE is None:
            source = RewardSource.from_env()
            source.check()
            _STATE = (source, Gatherer(source))
        return _STATE


def to_verl(result: dict[str, Any], keys: Sequence[str] | None = None) -> dict[str, Any]:
    """A response dict as verl's reward dict: ``score``, ``rftgrade_error`` and one
    ``rftgrade_<key>`` per sub-grader ``keys`` (0.0 where a failed sample has none), so
    every sample carries the same keys, as verl requires."""
    out: dict[str, Any] = {"score": float(result["reward"])}
    errors = result["metadata"]["errors"]
    out["rftgrade_error"] = float(any(v is True for v in errors.values()))
    subs = result.get("sub_rewards") or {}
    for key in sorted(subs) if keys is None else keys:
        out[f"rftgrade_{key}"] = float(subs.get(key, 0.0))
    return out


def _row(data_source: Any, solution_str: Any, ground_truth: Any, extra_info: Any) -> dict[str, Any]:
    if isinstance(extra_info, dict) and ITEM_KEY in extra_info:
        # A row of `rftgrade export dataset --trainer verl`: OpenAI's item, exactly.
        exported = exported_item(extra_info[ITEM_KEY])
        if exported is not None:
            return {"sample": solution_str, "item": exported}
    item = {
        **(dict(extra_info) if isinstance(extra_info, dict) else {}),
        "data_source": data_source,
        "ground_truth": ground_truth,
        "reference_answer": ground_truth,
    }
    return {"sample": solution_str, "item": item}


async def compute_score_async(
    data_source: str,
    solution_str: str,
    ground_truth: Any,
    extra_info: dict[str, Any] | None = None,
    **kwargs: Any,
) -> dict[str, Any]:
    """verl's reward entry point as a coroutine function (the reward loop awaits it).

    The sample is ``solution_str``; the item is ``extra_info["rftgrade_item"]`` where
    the row has it (``rftgrade export dataset``: OpenAI's item, exactly), else
    ``extra_info`` plus ``data_source``, ``ground_truth`` and ``reference_answer``
    (= ``ground_truth``). Never raises for a sample: a failed one scores 0 with
    ``rftgrade_error`` 1.0.
    """
    source, gatherer = _state()
    result = await gatherer.grade(_row(data_source, solution_str, ground_truth, extra_info))
    return to_verl(result, await sub_rewards(source))


async def _batch(
    data_sources: Sequence[Any],
    solution_strs: Sequence[Any],
    ground_truths: Sequence[Any],
    extra_infos: Sequence[Any] | None,
) -> list[dict[str, Any]]:
    source, _ = _state()
    infos = list(extra_infos) if extra_infos is not None else [None] * len(solution_strs)
    rows = [_row(*row) for row in zip(data_sources, solution_strs, ground_truths, infos, strict=True)]
    results = await grade_rows(source, rows)  # one request (or one in-process batch) for the lot
    keys = await sub_rewards(source)
    return [to_verl(r, keys) for r in results]


def compute_score_batch(
    data_sources: Sequence[Any],
    solution_strs: Sequence[Any],
    ground_truths: Sequence[Any],
    extra_infos: Sequence[Any] | None = None,
    **kwargs: Any,
) -> list[dict[str, Any]]:
    """verl's ``batch`` reward manager form: one reward dict per sample, in one request."""
    return run_sync(_batch(data_sources, solution_strs, ground_truths, extra_infos))


def compute_score(*args: Any, **kwargs: Any) -> Any:
    """verl's reward entry point, synchronous; safe from any thread.

    - keywords ``data_source, solution_str, ground_truth, extra_info`` (``naive``,
      ``dapo``, ``remote``, the reward loop): the reward dict of :func:`compute_score_async`;
    - plural keywords ``data_sources, solution_strs, ...`` (``batch``): a list of them;
    - positional ``(data_source, solution_str, ground_truth, extra_info)`` (``prime``,
      which only takes a number): the score as a float.
    """
    if "solution_strs" in kwargs:
        return compute_score_batch(
            kwargs["data_sources"],
            kwargs["solution_strs"],
            kwargs["ground_truths"],
            kwargs.get("extra_infos"),
        )
    names = ("data_source", "solution_str", "ground_truth", "extra_info")
    values = dict(zip(names, args, strict=False))
    values.update({k: kwargs[k] for k in names if k in kwargs})
    missing = [k for k in names[:3] if k not in values]
    if missing:
        raise TypeError(f"compute_score() missing {', '.join(missing)}")
    result = run_sync(
        compute_score_async(
            values["data_source"], values["solution_str"], values["ground_truth"], values.get("extra_info")
        )
    )
    return float(result["score"]) if args else result


if __name__ != "rftgrade.integrations.verl":
    # Loaded by path (verl's custom_reward_function): use the package's functions, so
    # there is one state per process and they pickle by reference (the ``remote``
    # manager ships the function to Ray actors).
    from rftgrade.integrations.verl import (  # type: ignore[assignment]
        compute_score,
        compute_score_async,
        compute_score_batch,
        to_verl,
    )
elif RewardSource.from_env().grader or RewardSource.from_env().server_url:
    _state()  # verl loads this module when it builds its reward manager: misconfiguration fails there
