"""TRL: reward functions for ``GRPOTrainer`` (and ``AsyncGRPOTrainer``).

``reward = make_reward_function("grader.json")`` returns a picklable
``functools.partial`` of a module-level ``async`` function, named after the grader
(``__name__``: TRL before 1.9 reads it and names the reward's metrics with it), with TRL's signature
``(prompts, completions, completion_ids, **kwargs) -> list[float | None]``. It
accepts plain-text and conversational completions, passes dataset columns into
the item (or, for a file of ``rftgrade export dataset --trainer trl``, its
``rftgrade_item`` column as the item), drops TRL's own keyword arguments, and returns ``None`` (which TRL
skips) for a sample that could not be graded, unless told otherwise. A
misconfigured grader raises when the function is made, with the fix.

For TRL's own command line (``trl grpo --config FILE``, as ``rftgrade export config
--trainer trl`` writes it), :func:`grader_reward` is the same function by import
path, its grader from the environment (``RFTGRADE_GRADER``, or ``RFTGRADE_SERVER_URL``),
which the YAML's ``env`` section sets.
"""

from __future__ import annotations

import functools
import threading
import types
from typing import Any

from rftgrade.integrations._client import RewardSource, grade_rewards
from rftgrade.integrations.trainer_data import ITEM_KEY, exported_item

__all__ = ["TRL_KWARGS", "grader_reward", "make_reward_function", "rftgrade_reward"]

TRL_KWARGS = frozenset({"trainer_state", "log_extra", "log_metric", "environments"})
"""Keyword arguments TRL adds that are not dataset columns."""


def _sample(completion: Any) -> Any:
    if isinstance(completion, list):  # conversational: the last assistant message
        messages = [m for m in completion if isinstance(m, dict)]
        assistant = [m for m in messages if m.get("role") == "assistant"] or messages
        return assistant[-1] if assistant else ""
    return completion


def _prompt(prompt: Any) -> Any:
    if isinstance(prompt, list):
        return "\n".join(str(m.get("content", "")) for m in prompt if isinstance(m, dict))
    return prompt


async def rftgrade_reward(
    prompts: list[Any],
    completions: list[Any],
    completion_ids: list[Any] | None = None,
    *,
    source: RewardSource,
    failed_reward: float | None = None,
    **kwargs: Any,
) -> list[float | None]:
    """Grade a TRL batch. A row's ``rftgrade_item`` column (``rftgrade export dataset``)
    is its item, exactly; otherwise the columns in ``kwargs`` become item fields, row by row."""
    columns = {
        k: v
        for k, v in kwargs.items()
        if k not in TRL_KWARGS and isinstance(v, list) and len(v) == len(completions)
    }
    exported = columns.get(ITEM_KEY)
    rows = []
    for i, completion in enumerate(completions):
        # A row of `rftgrade export dataset --trainer trl` carries OpenAI's item, exactly.
        item = exported_item(exported[i]) if exported is not None else None
        if item is None:
            item = {key: values[i] for key, values in columns.items()}
            item["prompt"] = _prompt(prompts[i]) if i < len(prompts) else ""
        rows.append({"sample": _sample(completion), "item": item})
    return [failed_reward if failed else reward for reward, failed in await grade_rewards(source, rows)]


_ENV_SOURCE: RewardSource | None = None
_ENV_LOCK = threading.Lock()


def _env_source() -> RewardSource:
    """The grader the environment names, checked once (raises with the fix if misconfigured)."""
    global _ENV_SOURCE
    with _ENV_LOCK:
        if _ENV_SOURCE is None:
            source = RewardSource.from_env()
            source.check()
            _ENV_SOURCE = source
        return _ENV_SOURCE


async def grader_reward(
    prompts: list[Any], completions: list[Any], completion_ids: list[Any] | None = None, **kwargs: Any
) -> list[float | None]:
    """TRL's reward function for the grader ``RFTGRADE_GRADER`` names (or the one served at
    ``RFTGRADE_SERVER_URL``): ``trl grpo --reward_funcs rftgrade.integrations.trl.grader_reward``.
    A sample that could not be graded is ``None``, which TRL skips.

    Raises:
        RewardSourceError: at the first batch, when the environment names no usable grader.
    """
    return await rftgrade_reward(prompts, completions, completion_ids, source=_env_source(), **kwargs)


def make_reward_function(
    grader: str | None = None,
    *,
    server_url: str | None = None,
    api_key: str | None = None,
    sandbox: str = "auto",
    timeout: float = 300.0,
    failed_reward: float | None = None,
    name: str | None = None,
    reasoning: str = "strip",
    tool_calls: str = "parse",
) -> functools.partial[Any]:
    """A TRL reward function for ``grader`` (a grader JSON path, or a server's grader id/name).

    Args:
        server_url: grade through a running ``rftgrade serve`` instead of in-process.
        failed_reward: what a sample that could not be graded scores (``None``: TRL skips it).
        name: the function's ``__name__`` (TRL's metric name); default: the grader's name.
        reasoning: ``"strip"`` grades each completion's final answer, without a reasoning
            model's ``<think>...</think>`` before it, as OpenAI's grader saw it;
            ``"keep"`` grades the completion as TRL decoded it.
        tool_calls: ``"parse"`` grades the tool calls written in a completion
            (``<tool_call>...</tool_call>``, gpt-oss's) as ``sample.output_tools``, as
            OpenAI's grader saw them; ``"keep"`` leaves them in the text.

    Raises:
        RewardSourceError: no grader, a grader file missing or invalid, an unknown sandbox,
            a malformed ``server_url`` (a server that is down or refuses is logged at the first call).
    """
    source = RewardSource(
        grader=grader,
        server_url=server_url,
        api_key=api_key,
        sandbox=sandbox,
        timeout=timeout,
        reasoning=reasoning,
        tool_calls=tool_calls,
    )
    info = source.check()
    return _named_reward(source, failed_reward, name or info.name)


class _GraderReward(functools.partial):  # type: ignore[type-arg]
    """A partial named after its grader, that pickles by rebuilding itself.

    TRL < 1.9 reads ``reward_funcs[i].__name__`` (a plain partial has none); TRL >= 1.9
    unwraps partials and names the metrics after the wrapped function: so the wrapped
    function is a copy of :func:`rftgrade_reward` carrying the grader's name, and two
    graders' metrics do not collide under one ``rftgrade_reward``. That copy cannot be
    pickled by reference; :meth:`__reduce__` rebuilds the whole thing instead.
    """

    def __reduce__(self) -> tuple[Any, ...]:
        name = self.__dict__["__name__"]
        return (_named_reward, (self.keywords["source"], self.keywords["failed_reward"], name))


def _named_reward(source: RewardSource, failed_reward: float | None, name: str) -> functools.partial[Any]:
    fn = types.FunctionType(
        rftgrade_reward.__code__, rftgrade_reward.__globals__, name, rftgrade_reward.__defaults__
    )
    fn.__kwdefaults__ = rftgrade_reward.__kwdefaults__
    fn.__qualname__ = name
    fn.__doc__ = rftgrade_reward.__doc__
    reward = _GraderReward(fn, source=source, failed_reward=failed_reward)
    reward.__name__ = name  # type: ignore[attr-defined]
    reward.__qualname__ = name  # type: ignore[attr-defined]
    return reward
