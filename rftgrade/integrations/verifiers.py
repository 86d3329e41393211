"""verifiers (PrimeIntellect): an OpenAI grader as a task reward.

verifiers 0.4 (``import verifiers.v1 as vf``) scores a rollout with a task's
``@vf.reward`` methods, or with functions plugged by name in the task config, each
called with what it names of ``task`` (the task's data) and ``trace`` (the rollout)::

    class MathTask(vf.Task[MathData]):
        correct = make_reward("grader.json")                 # in-process
        # correct = make_reward("math", server_url="http://reward-host:8000")

    # or, with no code: --env.taskset.task.rewards.correct.fn=rftgrade.integrations.verifiers:reward
    # and RFTGRADE_GRADER / RFTGRADE_SERVER_URL as for verl.

The sample is the rollout's reply (``trace.last_reply``); the item is the task's data
(its fields, ``info`` merged in, ``reference_answer`` = ``answer`` where unset).
Rollouts scored at once are graded as one batch. A misconfigured grader raises when
the reward is made; a sample that fails to grade scores ``failed_reward`` (0.0).
"""

from __future__ import annotations

import threading
from typing import Any

from rftgrade.integrations._client import RewardSource
from rftgrade.integrations._gather import Gatherer

__all__ = ["GraderReward", "item_of", "make_reward", "reward", "sample_of"]

# TaskData's own fields that describe the task's runtime, not its content.
_RUNTIME_FIELDS = frozenset(
    {
        "idx",
        "image",
        "workdir",
        "agent_user",
        "skills",
        "network_allow",
        "network_block",
        "artifacts",
        "artifact_max_bytes",
        "resources",
        "timeout",
    }
)


def item_of(task: Any) -> dict[str, Any]:
    """The OpenAI item for a verifiers task's data (a pydantic ``TaskData`` or a dict)."""
    if hasattr(task, "model_dump"):
        data: dict[str, Any] = task.model_dump(mode="json", exclude_none=True)
    else:
        data = dict(task or {})
    item = {k: v for k, v in data.items() if k not in _RUNTIME_FIELDS}
    info = item.get("info")
    if isinstance(info, dict):
        for key, value in info.items():
            item.setdefault(key, value)
    if "answer" in item:
        item.setdefault("reference_answer", item["answer"])
    return item


def sample_of(trace: Any) -> Any:
    """The rollout's reply: ``trace.last_reply``, or a completion's last assistant message."""
    if isinstance(trace, str):
        return trace
    if isinstance(trace, list):
        assistant = [m for m in trace if isinstance(m, dict) and m.get("role") == "assistant"]
        return (assistant[-1].get("content") or "") if assistant else ""
    return getattr(trace, "last_reply", "")


class GraderReward:
    """A verifiers reward for one grader: ``async (task, trace) -> float``.

    Tagged as ``@vf.reward(weight=...)`` tags a method, so it can stand as a task
    class attribute; named after the grader (``__name__``: the trace's reward key).
    """

    reward = True
    reward_priority = 0

    def __init__(self, source: RewardSource, *, name: str, weight: float = 1.0, failed_reward: float = 0.0):
        self.source = source
        self.__name__ = name
        self._vf_weight = weight
        self.failed_reward = failed_reward
        self._gatherer: Gatherer | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_gatherer": None}  # rebuilt where it is unpickled

    async def __call__(self, task: Any, trace: Any) -> float:
        if self._gatherer is None:
            self._gatherer = Gatherer(self.source)
        result = await self._gatherer.grade({"sample": sample_of(trace), "item": item_of(task)})
        failed = any(v is True for v in result["metadata"]["errors"].values())
        return self.failed_reward if failed else float(result["reward"])


def make_reward(
    grader: str | None = None,
    *,
    server_url: str | None = None,
    api_key: str | None = None,
    sandbox: str = "auto",
    timeout: float = 300.0,
    name: str | None = None,
    weight: float = 1.0,
    failed_reward: float = 0.0,
    reasoning: str = "strip",
    tool_calls: str = "parse",
) -> GraderReward:
    """A verifiers reward for ``grader`` (a grader JSON path, or a server's grader id/name).

    ``reasoning="strip"`` grades each reply's final answer, without a reasoning model's
    ``<think>...</think>`` before it, as OpenAI's grader saw it; ``"keep"`` grades all of it.
    ``tool_calls="parse"`` grades the tool calls written in a reply as
    ``sample.output_tools``; ``"keep"`` leaves them in the text.

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
    return GraderReward(source, name=name or info.name, weight=weight, failed_reward=failed_reward)


_FROM_ENV: GraderReward | None = None
_LOCK = threading.Lock()


async def reward(task: Any, trace: Any) -> float:
    """A reward to plug by import path (``rftgrade.integrations.verifiers:reward``),
    configured by ``RFTGRADE_GRADER`` / ``RFTGRADE_SERVER_URL`` / ``RFTGRADE_API_KEY``
    (and ``RFTGRADE_REASONING``)."""
    global _FROM_ENV
    with _LOCK:
        if _FROM_ENV is None:
            source = RewardSource.from_env()
            _FROM_ENV = GraderReward(source, name=source.check().name)
    return await _FROM_ENV(task, trace)
