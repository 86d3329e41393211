"""TRL's GRPOTrainer for a few steps on a tiny random model with rftgrade's reward
function (run with the trainers' venv; with ``trl-1.8`` first on ``PYTHONPATH`` it runs
TRL 1.8, which reads ``reward_funcs[i].__name__``). Prints one RESULT line.

Every reward call is also recorded (a grader-side tally through the server's
metrics), and the rewards TRL logged are compared with the grader's own.
"""

from __future__ import annotations

import functools
import logging
import sys
import tempfile
from pathlib import Path
from typing import Any

from _common import GRADER, emit, grpo_config, requests_to, serve, write_grader

import rftgrade.integrations.trl as adapter
from rftgrade.testing.tiny_lm import tiny_causal_lm


def dataset(n: int) -> Any:
    from datasets import Dataset

    # A completion of the tiny model is noise; "reference_answer" "" and an explanation
    # of "" make the reward depend on it anyway (fuzzy similarity to "").
    return Dataset.from_dict(
        {
            "prompt": [f"Q{i}: say nothing" for i in range(n)],
            "reference_answer": [""] * n,
            "explanation": ["a"] * n,
        }
    )


SEEN: list[list[Any]] = []


def record(prompts: list[Any], completions: list[Any], **kwargs: Any) -> list[float]:
    """A second reward function (weight 0): what TRL asked rftgrade to grade, call by call."""
    SEEN.append(list(completions))
    return [0.0] * len(completions)


def train(reward: Any, out: Path, steps: int = 2) -> list[dict[str, Any]]:
    from trl import GRPOTrainer

    model, tokenizer = tiny_causal_lm(seed=0)
    args = grpo_config(out, steps=steps, batch=4, generations=4, completion_length=6)
    trainer = GRPOTrainer(
        model=model,
        reward_funcs=[reward, record],
        args=args,
        train_dataset=dataset(8),
        processing_class=tokenizer,
    )
    trainer.train()
    return list(trainer.state.log_history)


def main() -> None:
    import trl

    logging.basicConfig(level=logging.WARNING)
    tmp = Path(tempfile.mkdtemp())
    grader = write_grader(tmp)
    result: dict[str, Any] = {"trl": trl.__version__}
    reward = adapter.make_reward_function(grader, sandbox="process", failed_reward=0.0)
    result["name"] = reward.__name__
    logs = train(reward, tmp / "in-process")
    result["in_process"] = [
        {k: v for k, v in entry.items() if k.startswith("rewards/") or k == "reward"} for entry in logs
    ]
    # The grader's own rewards for the completions TRL generated, call by call.
    from rftgrade import Grader

    with Grader(GRADER) as own:
        item = {"reference_answer": "", "explanation": "a"}
        result["own_means"] = [
            sum(r.reward for r in own.run_batch([{"sample": c, "item": item} for c in call])) / len(call)
            for call in SEEN
        ]
    SEEN.clear()
    with serve("--grader", f"g={grader}") as url:
        remote = adapter.make_reward_function("g", server_url=url, failed_reward=0.0, name="served")
        before = requests_to(url, "/v1/grade")
        logs = train(remote, tmp / "server")
        result["server_requests"] = requests_to(url, "/v1/grade") - before
        result["server"] = [
            {k: v for k, v in entry.items() if k.startswith("rewards/") or k == "reward"} for entry in logs
        ]
        result["server_calls"] = len(SEEN)
    # The trap: a bare functools.partial (what make_reward_function returned before) has no __name__.
    bare = functools.partial(
        adapter.rftgrade_reward, source=adapter.RewardSource(grader=grader, sandbox="process")
    )
    try:
        train(bare, tmp / "bare", steps=1)
        result["bare_partial"] = "trained"
    except AttributeError as exc:
        result["bare_partial"] = f"AttributeError: {exc}"
    result["grader_name"] = GRADER["name"]
    emit(result)


if __name__ == "__main__":
    sys.exit(main())
