"""``python3 -m openrlhf.cli.train_ppo_ray ARGS`` for a CPU machine: OpenRLHF's own
command line, from its installed ``train_ppo_ray.py`` (every argument, every check
it makes of them), up to the training itself, which needs GPUs, DeepSpeed and vLLM.

The module's ``__main__`` block is run as OpenRLHF wrote it, with ``train`` standing
for the training: it reads the prompt dataset named by the arguments with OpenRLHF's
``PromptDataset`` (their input key, label key and chat-template flag), and sends each
prompt's label with an answer to the reward URL the arguments name, through
OpenRLHF's agent executor. Prints one RESULT line. (The module itself cannot be
imported here: its imports load DeepSpeed.)
"""

from __future__ import annotations

import ast
import asyncio
import importlib.util
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from _common import emit
from dataset_check import ANSWERS


def main_block() -> ast.Module:
    """The ``if __name__ == "__main__":`` block of OpenRLHF's installed train_ppo_ray.py."""
    spec = importlib.util.find_spec("openrlhf")
    assert spec is not None and spec.origin is not None
    path = Path(spec.origin).parent / "cli" / "train_ppo_ray.py"
    tree = ast.parse(path.read_text(), str(path))
    for node in tree.body:
        if isinstance(node, ast.If) and "__main__" in ast.unparse(node.test):
            return ast.Module(body=node.body, type_ignores=[])
    raise SystemExit(f"no __main__ block in {path}")


def train(args: Any) -> None:
    """What OpenRLHF's training would do first with a prompt: read it, and ask for its reward."""
    from datasets import load_dataset
    from openrlhf.datasets.prompts_dataset import PromptDataset
    from openrlhf_check import Engine, rollout_with, tokenizer

    loaded = load_dataset("json", data_files=args.data.prompt_dataset)["train"]
    tok = tokenizer()
    data = SimpleNamespace(
        input_key=args.data.input_key,
        label_key=args.data.label_key,
        apply_chat_template=args.data.apply_chat_template,
        image_key="images",
    )
    strategy = SimpleNamespace(args=SimpleNamespace(data=data), is_rank_0=lambda: False)
    dataset = PromptDataset(loaded, tok, strategy)
    url = args.reward.remote_url[0]
    rewards = []
    for i in range(len(dataset)):
        reward, _ = asyncio.run(rollout_with(url, dataset[i][1], ANSWERS[i], dataset[i][2], tok, Engine))
        rewards.append(round(float(reward[0] if isinstance(reward, list) else reward), 6))
    emit(
        {
            "args": {
                "rollout.batch_size": args.rollout.batch_size,
                "rollout.n_samples_per_prompt": args.rollout.n_samples_per_prompt,
                "train.batch_size": args.train.batch_size,
                "train.num_episodes": args.train.num_episodes,
                "train.seed": args.train.seed,
                "actor.adam.lr": args.actor.adam.lr,
                "algo.advantage.estimator": args.algo.advantage.estimator,
                "eval.dataset": args.eval.dataset,
                "eval.steps": args.eval.steps,
                "eval.n_samples_per_prompt": args.eval.n_samples_per_prompt,
                "actor.model_name_or_path": args.actor.model_name_or_path,
            },
            "url": url,
            "rewards": rewards,
        }
    )


def main() -> None:
    sys.argv = ["train_ppo_ray.py", *sys.argv[1:]]
    namespace: dict[str, Any] = {"__name__": "__main__", "train": train}
    exec("import argparse, os\nfrom datetime import datetime", namespace)
    exec(compile(main_block(), "openrlhf/cli/train_ppo_ray.py", "exec"), namespace)


if __name__ == "__main__":
    main()
