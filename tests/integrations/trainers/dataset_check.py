"""An OpenAI RFT dataset exported with ``rftgrade export dataset``, read by the trainers'
own dataset code (verl's RLHFDataset, ``datasets`` for TRL, OpenRLHF's PromptDataset)
and graded through their reward paths (run with the trainers' venv).

The rows' items differ in shape from row to row (``reference_answer`` a string, a
list, an object), as OpenAI RFT rows may. The grader's reward encodes a fingerprint
of the whole item it is handed, so a reward equal to the grader's own on the original
row means the trainer's grader saw OpenAI's item exactly. Prints one RESULT line.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from _common import emit, grpo_config, serve

ROWS: list[dict[str, Any]] = [
    {
        "messages": [
            {"role": "developer", "content": "Answer with the number only."},
            {"role": "user", "content": "What is 6 * 7?"},
        ],
        "reference_answer": "42",
    },
    {
        "messages": [{"role": "user", "content": "What is 2 + 2?"}],
        "reference_answer": ["4", "four"],
        "meta": {"source": "gsm", "difficulty": 1},
    },
    {
        "messages": [{"role": "user", "content": [{"type": "text", "text": "Say seven as a digit."}]}],
        "reference_answer": {"value": 7},
    },
]
ANSWERS = ["42", "five", "7"]

# Half the reward for the answer, and a fingerprint of the item it is given.
GRADER: dict[str, Any] = {
    "type": "python",
    "name": "answer_and_item",
    "source": (
        "import json, zlib\n"
        "def grade(sample, item):\n"
        "    ref = item['reference_answer']\n"
        "    if isinstance(ref, dict):\n"
        "        options = [str(ref['value'])]\n"
        "    elif isinstance(ref, list):\n"
        "        options = [str(o) for o in ref]\n"
        "    else:\n"
        "        options = [str(ref)]\n"
        "    match = 1.0 if sample['output_text'].strip() in options else 0.0\n"
        "    # OpenRLHF's route adds prompt and query to an item that has none: left out here.\n"
        "    given = {k: v for k, v in item.items() if k not in ('prompt', 'query')}\n"
        "    fingerprint = zlib.crc32(json.dumps(given, sort_keys=True).encode()) % 997\n"
        "    return 0.5 * match + fingerprint / 2000.0\n"
    ),
}


def export(data: Path, trainer: str, out: Path) -> str:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "rftgrade",
            "export",
            "dataset",
            str(data),
            "--trainer",
            trainer,
            "-o",
            str(out),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout


def verl_scores(
    path: Path,
    tokenizer: Any,
    whole: dict[str, Any] | None = None,
    answers: list[str] = ANSWERS,
    max_prompt_length: int = 256,
) -> dict[str, Any]:
    """verl's RLHFDataset reads the file; its rows, with ``answers`` as their responses, go
    through the reward loop's naive manager (or the manager a ``whole`` verl config names)."""
    import numpy as np
    import torch
    from omegaconf import OmegaConf
    from verl import DataProto
    from verl.trainer.ppo.reward import load_reward_manager
    from verl.utils.dataset.rl_dataset import RLHFDataset

    import rftgrade.integrations.verl as adapter

    dataset = RLHFDataset(
        data_files=[str(path)],
        tokenizer=tokenizer,
        config=OmegaConf.create(
            {"max_prompt_length": max_prompt_length, "cache_dir": str(path.parent / "cache")}
        ),
    )
    rows = [dataset[i] for i in range(len(dataset))]
    p_ids, r_ids, mask = [], [], []
    texts = [
        tokenizer.apply_chat_template(r["raw_prompt"], add_generation_prompt=True, tokenize=False)
        for r in rows
    ]
    prompts = [tokenizer(text)["input_ids"] for text in texts]
    plen = max(len(p) for p in prompts)
    responses = [
        [*tokenizer(a, add_special_tokens=False)["input_ids"], tokenizer.eos_token_id] for a in answers
    ]
    rlen = max(len(r) for r in responses)
    for p, r in zip(prompts, responses, strict=True):
        p_ids.append([tokenizer.pad_token_id] * (plen - len(p)) + p)
        r_ids.append(r + [tokenizer.pad_token_id] * (rlen - len(r)))
        mask.append([0] * (plen - len(p)) + [1] * len(p) + [1] * len(r) + [0] * (rlen - len(r)))
    data = DataProto.from_dict(
        tensors={
            "prompts": torch.tensor(p_ids),
            "responses": torch.tensor(r_ids),
            "attention_mask": torch.tensor(mask),
        },
        non_tensors={
            key: np.array([r[key] for r in rows], dtype=object)
            for key in ("data_source", "reward_model", "extra_info")
        },
    )
    config = OmegaConf.create(
        whole
        or {
            "reward": {
                "custom_reward_function": {
                    "path": adapter.__file__,
                    "name": "compute_score",
                    "reward_kwargs": {},
                },
                "reward_manager": {"source": "register", "name": "naive"},
                "num_workers": 1,
                "reward_kwargs": {},
            }
        }
    )
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    manager = load_reward_manager(config, tokenizer)

    async def run() -> list[dict[str, Any]]:
        return list(await asyncio.gather(*(manager.run_single(data[i : i + 1]) for i in range(len(data)))))

    out = loop.run_until_complete(run())
    return {
        "raw_prompts": [r["raw_prompt"] for r in rows],
        "scores": [round(float(o["reward_score"]), 6) for o in out],
        "errors": [o["reward_extra_info"].get("rftgrade_error") for o in out],
    }


SEEN: list[tuple[list[Any], list[Any]]] = []


def record(prompts: list[Any], completions: list[Any], **kwargs: Any) -> list[float]:
    """A second reward function (weight 0): the completions and items TRL handed the rewards."""
    SEEN.append((list(completions), list(kwargs["rftgrade_item"])))
    return [0.0] * len(completions)


def trl_run(path: Path, grader: str, out: Path) -> dict[str, Any]:
    """TRL's GRPOTrainer, one step on the exported file loaded with ``datasets``."""
    from datasets import load_dataset
    from trl import GRPOTrainer

    import rftgrade.integrations.trl as adapter
    from rftgrade.testing.tiny_lm import tiny_causal_lm

    train = load_dataset("json", data_files=str(path))["train"]
    model, tokenizer = tiny_causal_lm(seed=0)
    reward = adapter.make_reward_function(grader, sandbox="process", failed_reward=0.0)
    args = grpo_config(out, steps=1, batch=6, generations=2, completion_length=4)
    trainer = GRPOTrainer(
        model=model, reward_funcs=[reward, record], args=args, train_dataset=train, processing_class=tokenizer
    )
    trainer.train()
    name = reward.__name__
    logged = [e[f"rewards/{name}/mean"] for e in trainer.state.log_history if f"rewards/{name}/mean" in e]
    return {"columns": sorted(train.column_names), "logged_means": logged}


def openrlhf_run(
    path: Path, grader: Path, answers: list[str] = ANSWERS, tok: Any = None, serve_args: tuple[str, ...] = ()
) -> dict[str, Any]:
    """OpenRLHF's PromptDataset reads the file (--data.input_key messages
    --apply_chat_template --data.label_key item); its agent executor sends each
    prompt's label to rftgrade serve with a response (``answers``, as ``tok`` encodes them)."""
    from types import SimpleNamespace

    from datasets import load_dataset
    from openrlhf.datasets.prompts_dataset import PromptDataset
    from openrlhf_check import Engine, rollout_with, tokenizer

    loaded = load_dataset("json", data_files=str(path))["train"]
    tok = tok or tokenizer()
    data_args = SimpleNamespace(
        input_key="messages", label_key="item", apply_chat_template=True, image_key="images"
    )
    strategy = SimpleNamespace(args=SimpleNamespace(data=data_args), is_rank_0=lambda: False)
    dataset = PromptDataset(loaded, tok, strategy)
    out: dict[str, Any] = {"openrlhf/columns": sorted(loaded.column_names)}
    out["openrlhf/labels_exact"] = [json.loads(dataset[i][2]) for i in range(len(dataset))] == ROWS
    with serve("--grader", f"g={grader}", *serve_args) as url:
        rewards = [
            asyncio.run(
                rollout_with(
                    f"{url}/v1/openrlhf/reward?grader=g",
                    dataset[i][1],
                    answers[i],
                    dataset[i][2],
                    tok,
                    Engine,
                )
            )
            for i in range(len(dataset))
        ]
    out["openrlhf/scores"] = [round(float(r[0][0] if isinstance(r[0], list) else r[0]), 6) for r in rewards]
    return out


def main() -> None:
    from rftgrade import Grader
    from rftgrade.testing.tiny_lm import tiny_tokenizer

    logging.basicConfig(level=logging.WARNING)
    tmp = Path(tempfile.mkdtemp())
    data = tmp / "train.jsonl"
    data.write_text("".join(json.dumps(row) + "\n" for row in ROWS))
    grader = tmp / "grader.json"
    grader.write_text(json.dumps(GRADER))
    os.environ["RFTGRADE_GRADER"] = str(grader)
    os.environ["RFTGRADE_SANDBOX"] = "process"
    result: dict[str, Any] = {}
    with Grader(GRADER, sandbox="process") as own:
        result["own"] = [
            round(r.reward, 6)
            for r in own.run_batch([{"sample": a, "item": row} for a, row in zip(ANSWERS, ROWS, strict=True)])
        ]

        # The trap the JSON-text item avoids: the item's fields as columns of their own
        # (reference_answer a string, a list, an object) do not keep their values.
        naive = tmp / "naive.jsonl"
        naive.write_text("".join(json.dumps({"prompt": r["messages"], **r}) + "\n" for r in ROWS))
        try:
            from datasets import load_dataset

            naive_loaded = load_dataset("json", data_files=str(naive))["train"]
            # Loaded (datasets 5 gives a mixed column its Json type), but the string "42" comes back a number.
            result["trap/item_columns"] = type(naive_loaded[0]["reference_answer"]).__name__
        except Exception as exc:
            result["trap/item_columns"] = type(exc).__name__

        tokenizer = tiny_tokenizer()
        for suffix in ("parquet", "jsonl"):
            path = tmp / f"verl.{suffix}"
            result[f"verl/{suffix}/stdout"] = export(data, "verl", path)
            result[f"verl/{suffix}"] = verl_scores(path, tokenizer)

        path = tmp / "trl.jsonl"
        export(data, "trl", path)
        result["trl"] = trl_run(path, str(grader), tmp / "trl-out")
        # The grader's own rewards for what TRL generated, against the original rows.
        originals = {json.dumps(r["messages"][-1]): r for r in ROWS}
        completions, items = SEEN[0]
        exact = [json.loads(text) for text in items]
        result["trl/items_exact"] = all(item in ROWS for item in exact)
        # Conversational prompts make conversational completions: the assistant's turn is the sample.
        rows = [
            {"sample": c[-1]["content"], "item": originals[json.dumps(item["messages"][-1])]}
            for c, item in zip(completions, exact, strict=True)
        ]
        rewards = [r.reward for r in own.run_batch(rows)]
        result["trl/own_mean"] = sum(rewards) / len(rewards)

        path = tmp / "openrlhf.jsonl"
        export(data, "openrlhf", path)
        result.update(openrlhf_run(path, grader))
    emit(result)


if __name__ == "__main__":
    sys.exit(main())
