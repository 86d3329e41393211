"""What TRL's AsyncGRPOTrainer does with reward functions, short of its vLLM server
(run with the trainers' venv): its AsyncRolloutWorker pickles them and runs them in a
*spawned* child, where TRL's own ``get_callable_name`` / ``is_async_callable`` decide
how to name and call them. Prints one RESULT line."""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import pickle
import sys
import tempfile
from pathlib import Path
from typing import Any

from _common import emit, write_grader


def child(payload: bytes, queue: Any) -> None:
    from trl.trainer.utils import get_callable_name, is_async_callable

    reward = pickle.loads(payload)
    kwargs = {
        "prompts": ["p", "p"],
        "completions": ["42", "41"],
        "reference_answer": ["42", "42"],
        "explanation": ["42", "42"],
    }
    out = asyncio.run(reward(**kwargs)) if is_async_callable(reward) else reward(**kwargs)
    queue.put({"name": get_callable_name(reward), "async": is_async_callable(reward), "rewards": out})


def main() -> None:
    import rftgrade.integrations.trl as adapter

    grader = write_grader(Path(tempfile.mkdtemp()))
    reward = adapter.make_reward_function(grader, sandbox="process")
    ctx = mp.get_context("spawn")  # as AsyncRolloutWorker: the child re-imports everything
    queue = ctx.Queue()
    proc = ctx.Process(target=child, args=(pickle.dumps(reward), queue))
    proc.start()
    result = queue.get(timeout=120)
    proc.join(60)
    emit(result)


if __name__ == "__main__":
    sys.exit(main())
