"""verifiers 0.4's own task scoring with rftgrade's reward (run with the trainers' venv).

A ``vf.Task`` with the reward as a class attribute (and one plugged by import path
through the task config) scores traces with ``Task.score``, as an environment does
after a rollout, in-process and through ``rftgrade serve``. Prints one RESULT line.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import verifiers.v1 as vf
from _common import GRADER, emit, requests_to, serve, write_grader
from pydantic import Field

from rftgrade.integrations import verifiers as adapter


class QA(vf.TaskData):
    answer: str
    info: dict[str, Any] = Field(default_factory=dict)


REPLIES = ["42", "41", "42", "7"]
DATA = [
    QA(prompt="6*7?", answer="42", info={"explanation": "42"}),
    QA(prompt="6*7?", answer="42", info={}),  # no explanation: fails to grade
    QA(prompt="6*7?", answer="42", info={"explanation": "42"}),
    QA(prompt="1+6?", answer="7", info={"explanation": "7"}),
]


def trace(data: QA, reply: str) -> Any:
    return vf.Trace(
        task=vf.TraceTask(type="QA", data=data), agent=vf.AgentInfo(config=vf.AgentConfig()), root_reply=reply
    )


async def score(task_cls: type, config: Any = None) -> list[dict[str, Any]]:
    traces = [trace(d, r) for d, r in zip(DATA, REPLIES, strict=True)]
    tasks = [task_cls(d, config) for d in DATA]
    await asyncio.gather(*(t.score(tr) for t, tr in zip(tasks, traces, strict=True)))
    return [
        {k: (v.score if v else None) for k, v in tr.rewards.items()} | {"total": tr.reward} for tr in traces
    ]


def main() -> None:
    tmp = Path(tempfile.mkdtemp())
    grader = write_grader(tmp)
    result: dict[str, Any] = {"verifiers": vf.__name__ and __import__("verifiers").__version__}

    class InProcess(vf.Task[QA, vf.State, vf.TaskConfig]):
        correct = adapter.make_reward(grader, sandbox="process")

    result["in_process"] = asyncio.run(score(InProcess))
    os.environ.update(RFTGRADE_GRADER=grader, RFTGRADE_SANDBOX="process")

    class Plain(vf.Task[QA, vf.State, vf.TaskConfig]):
        pass

    plugged = vf.TaskConfig(
        rewards={"graded": {"fn": "rftgrade.integrations.verifiers:reward", "weight": 2.0}}
    )
    result["plugged"] = asyncio.run(score(Plain, plugged))
    with serve("--grader", f"g={grader}", "--api-key", "k") as url:

        class Served(vf.Task[QA, vf.State, vf.TaskConfig]):
            correct = adapter.make_reward("g", server_url=url, api_key="k")

        before = requests_to(url, "/v1/grade")
        result["server"] = asyncio.run(score(Served))
        result["server_requests"] = requests_to(url, "/v1/grade") - before
    result["grader_name"] = GRADER["name"]
    emit(result)


if __name__ == "__main__":
    sys.exit(main())
