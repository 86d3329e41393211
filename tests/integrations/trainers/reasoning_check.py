"""A reasoning model's completions through verl's and OpenRLHF's own reward paths (run
with the trainers' venv).

The tokenizer is the tiny character-level one with a reasoning model's markers added
the way real tokenizers have them: Qwen3's ``<think>`` and ``</think>`` as ordinary
added tokens (kept by a decode that skips special tokens), gpt-oss's harmony markers
(``<|channel|>``, ``<|message|>``, ...) as special tokens. verl's reward loop decodes
the response ids itself without special tokens; OpenRLHF's executor decodes prompt and
response with them kept. Each hands its text to rftgrade, whose grader must see the
final answer alone: the rewards of the bare answers. With the reasoning kept
(``RFTGRADE_REASONING=keep``, ``rftgrade serve --reasoning keep``) the answer part of
the reward is lost, so the check can fail. Prints one RESULT line.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from _common import emit
from dataset_check import ANSWERS, GRADER, ROWS, export, openrlhf_run, verl_scores

HARMONY = ["<|start|>", "<|channel|>", "<|message|>", "<|end|>", "<|return|>"]


def qwen3(answer: str) -> str:
    return f"<think>\nThe question asks for a number. Let me check it twice.\n</think>\n\n{answer}"


def gpt_oss(answer: str) -> str:
    return (
        "<|channel|>analysis<|message|>We need the number. Answer briefly.<|end|>"
        f"<|start|>assistant<|channel|>final<|message|>{answer}<|return|>"
    )


def reasoning_tokenizer() -> Any:
    from openrlhf_check import tokenizer

    tok = tokenizer()  # the tiny one, with ChatML's special tokens
    tok.add_tokens(["<think>", "</think>", "\n\n"])  # as Qwen3's: added, not special (and its blank line)
    tok.add_tokens(HARMONY, special_tokens=True)
    return tok


def main() -> None:
    from rftgrade import Grader

    logging.basicConfig(level=logging.WARNING)
    mode = sys.argv[1] if len(sys.argv) > 1 else "strip"
    tmp = Path(tempfile.mkdtemp())
    data = tmp / "train.jsonl"
    data.write_text("".join(json.dumps(row) + "\n" for row in ROWS))
    grader = tmp / "grader.json"
    grader.write_text(json.dumps(GRADER))
    os.environ.update(RFTGRADE_GRADER=str(grader), RFTGRADE_SANDBOX="process", RFTGRADE_REASONING=mode)
    tok = reasoning_tokenizer()
    result: dict[str, Any] = {"mode": mode}
    with Grader(GRADER, sandbox="process") as own:
        pairs = zip(ANSWERS, ROWS, strict=True)
        result["own"] = [
            round(r.reward, 6) for r in own.run_batch([{"sample": a, "item": i} for a, i in pairs])
        ]
    # What each trainer's decode makes of the ids: the text rftgrade is handed.
    ids = tok(qwen3("42") + gpt_oss("42"), add_special_tokens=False)["input_ids"]
    result["decoded/skip_special"] = tok.decode(ids, skip_special_tokens=True)
    result["decoded/kept"] = tok.decode(ids, skip_special_tokens=False)
    verl_file, openrlhf_file = tmp / "verl.jsonl", tmp / "openrlhf.jsonl"
    export(data, "verl", verl_file)
    export(data, "openrlhf", openrlhf_file)
    for name, wrap in (("qwen3", qwen3), ("gpt_oss", gpt_oss)):
        answers = [wrap(a) for a in ANSWERS]
        result[f"verl/{name}"] = verl_scores(verl_file, tok, answers=answers)["scores"]
        result[f"openrlhf/{name}"] = openrlhf_run(openrlhf_file, grader, answers, tok, ("--reasoning", mode))[
            "openrlhf/scores"
        ]
    emit(result)


if __name__ == "__main__":
    sys.exit(main())
