"""verl's own reward paths with rftgrade's adapter (run with the trainers' venv).

Loads the adapter the way verl does (``reward.custom_reward_function`` through
``verl.trainer.ppo.reward.load_reward_manager`` / ``get_custom_reward_fn``), builds a
``DataProto`` batch of tokenized responses, and scores it with every reward manager
verl 0.9 ships: the reward loop's ``naive``, ``dapo``, ``remote`` (Ray actors) and the
legacy ``naive``, ``dapo``, ``batch``, ``prime``. Prints one RESULT line.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from _common import emit, requests_to, serve, write_grader
from omegaconf import OmegaConf

import rftgrade.integrations.verl as adapter
from rftgrade.testing.tiny_lm import tiny_tokenizer

ADAPTER_PATH = adapter.__file__
ANSWERS = ["42", "41", "42", "7"]
TRUTHS = ["42", "42", "42", "7"]
# Row 1 has no explanation: it fails to grade, and must still carry every key.
EXPLANATIONS: list[str | None] = ["42", None, "42", "7"]


def batch(tokenizer: Any) -> Any:
    from verl import DataProto

    prompts = [f"Q{i}: ?" for i in range(len(ANSWERS))]
    plen = max(len(tokenizer(p)["input_ids"]) for p in prompts)
    rlen = max(len(tokenizer(a)["input_ids"]) for a in ANSWERS) + 2
    p_ids, r_ids, mask = [], [], []
    for prompt, answer in zip(prompts, ANSWERS, strict=True):
        p = tokenizer(prompt)["input_ids"]
        r = [*tokenizer(answer)["input_ids"], tokenizer.eos_token_id]
        p_ids.append([tokenizer.pad_token_id] * (plen - len(p)) + p)  # left-padded prompt
        r_ids.append(r + [tokenizer.pad_token_id] * (rlen - len(r)))  # right-padded response
        mask.append([0] * (plen - len(p)) + [1] * len(p) + [1] * len(r) + [0] * (rlen - len(r)))
    infos = [
        {"index": i} if e is None else {"index": i, "explanation": e} for i, e in enumerate(EXPLANATIONS)
    ]
    return DataProto.from_dict(
        tensors={
            "prompts": torch.tensor(p_ids),
            "responses": torch.tensor(r_ids),
            "attention_mask": torch.tensor(mask),
        },
        non_tensors={
            "data_source": np.array(["gsm8k"] * len(ANSWERS), dtype=object),
            "reward_model": np.array([{"ground_truth": t} for t in TRUTHS], dtype=object),
            "extra_info": np.array(infos, dtype=object),
        },
    )


def config(name: str, manager: str) -> Any:
    return OmegaConf.create(
        {
            "reward": {
                "custom_reward_function": {"path": ADAPTER_PATH, "name": name, "reward_kwargs": {}},
                "reward_manager": {"source": "register", "name": manager},
                "num_workers": 2,
                "reward_kwargs": {},
            }
        }
    )


def loop_manager(name: str, manager: str, tokenizer: Any) -> dict[str, Any]:
    """The reward loop (verl 0.9's trainer): one ``run_single`` per sample, concurrently."""
    from verl.trainer.ppo.reward import load_reward_manager

    loop = asyncio.new_event_loop()  # a reward-loop worker's own loop (legacy prime closes the last one)
    asyncio.set_event_loop(loop)
    mgr = load_reward_manager(config(name, manager), tokenizer)
    data = batch(tokenizer)

    async def run() -> list[dict[str, Any]]:
        return list(await asyncio.gather(*(mgr.run_single(data[i : i + 1]) for i in range(len(data)))))

    out = loop.run_until_complete(run())
    return {
        "scores": [round(float(o["reward_score"]), 4) for o in out],
        "keys": [sorted(o["reward_extra_info"]) for o in out],
        "errors": [o["reward_extra_info"].get("rftgrade_error") for o in out],
    }


def legacy_manager(name: str, manager: str, tokenizer: Any) -> dict[str, Any]:
    """verl's legacy managers: ``__call__(data, return_dict=True)`` -> token-level rewards."""
    from verl.trainer.ppo.reward import get_custom_reward_fn
    from verl.workers.reward_manager import get_reward_manager_cls

    fn = get_custom_reward_fn(config(name, manager))
    mgr = get_reward_manager_cls(manager)(tokenizer=tokenizer, num_examine=0, compute_score=fn)
    out = mgr(batch(tokenizer), return_dict=True)
    extra = {k: len(v) for k, v in out.get("reward_extra_info", {}).items()}
    return {"scores": [round(float(x), 4) for x in out["reward_tensor"].sum(-1)], "extra_lengths": extra}


def main() -> None:
    tmp = Path(tempfile.mkdtemp())
    os.environ["RFTGRADE_GRADER"] = write_grader(tmp)
    os.environ["RFTGRADE_SANDBOX"] = "process"
    tokenizer = tiny_tokenizer()
    result: dict[str, Any] = {"verl": __import__("verl").__version__}
    for manager, name in [
        ("naive", "compute_score"),
        ("naive", "compute_score_async"),
        ("dapo", "compute_score"),
    ]:
        result[f"loop/{manager}/{name}"] = loop_manager(name, manager, tokenizer)
    for manager in ("naive", "dapo", "batch", "prime"):
        result[f"legacy/{manager}"] = legacy_manager("compute_score", manager, tokenizer)

    # The traps, reproduced on verl's own code: an async function in the legacy naive
    # manager, and in the remote manager.
    try:
        legacy_manager("compute_score_async", "naive", tokenizer)
        result["trap/legacy_naive_async"] = "no error"
    except TypeError as exc:
        result["trap/legacy_naive_async"] = f"TypeError: {exc}"

    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        result["loop/remote/compute_score"] = loop_manager("compute_score", "remote", tokenizer)
        try:
            loop_manager("compute_score_async", "remote", tokenizer)
            result["trap/remote_async"] = "no error"
        except AssertionError as exc:
            result["trap/remote_async"] = f"AssertionError: {exc}"
    finally:
        ray.shutdown()

    # Through rftgrade serve: the batch manager's list goes in one request; the reward
    # loop's concurrent single calls are gathered too.
    with serve("--grader", f"g={os.environ['RFTGRADE_GRADER']}", "--api-key", "k") as url:
        os.environ.update(RFTGRADE_SERVER_URL=url, RFTGRADE_GRADER="g", RFTGRADE_API_KEY="k")
        adapter._STATE = None
        before = requests_to(url, "/v1/grade")
        result["server/legacy/batch"] = legacy_manager("compute_score", "batch", tokenizer)
        result["server/batch_requests"] = requests_to(url, "/v1/grade") - before
        result["server/loop/naive"] = loop_manager("compute_score", "naive", tokenizer)
        # The async form's concurrent calls share one loop: one batch, one request.
        before = requests_to(url, "/v1/grade")
        result["server/loop/naive_async"] = loop_manager("compute_score_async", "naive", tokenizer)
        result["server/loop_requests"] = requests_to(url, "/v1/grade") - before
    emit(result)


if __name__ == "__main__":
    sys.exit(main())
