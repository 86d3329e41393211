"""OpenRLHF's own rollout reward path against ``rftgrade serve`` (run with the trainers' venv).

``openrlhf.utils.agent.SingleTurnAgentExecutor.execute`` tokenizes the prompt, asks
the engine for a continuation, decodes prompt + response with special tokens kept
and posts ``{"query", "prompts", "labels"}`` to the remote reward URL with aiohttp
and no headers. The engine is the one stand-in (vLLM does not run on CPU): it
"generates" fixed token ids ending in the EOS token. Prints one RESULT line.
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from _common import emit, serve, write_grader

from rftgrade.testing.tiny_lm import tiny_tokenizer

ANSWER = {
    "type": "string_check",
    "name": "answer",
    "input": "{{ sample.output_json.answer }}",
    "reference": "{{ item.reference_answer }}",
    "operation": "eq",
}
EXPLAINED = {
    "type": "string_check",
    "name": "explained",
    "input": "{{ sample.output_json.why }}",
    "reference": "{{ item.reference_explanation }}",
    "operation": "eq",
}


def tokenizer() -> Any:
    tok = tiny_tokenizer()
    tok.add_special_tokens(
        {"eos_token": "<|im_end|>", "additional_special_tokens": ["<|im_start|>", "<|endoftext|>"]}
    )
    return tok


class Engine:
    """Stands in for vLLM: returns ``text`` as generated token ids, then EOS."""

    def __init__(self, tok: Any, text: str) -> None:
        self.ids = [*tok(text, add_special_tokens=False)["input_ids"], tok.eos_token_id]

    async def generate(self, prompt_token_ids: list[int], params: Any, multi_modal_data: Any = None) -> Any:
        out = SimpleNamespace(token_ids=self.ids, finish_reason="stop", logprobs=None)
        return SimpleNamespace(outputs=[out])


async def rollout_with(url: str, prompt: str, response: str, label: Any, tok: Any, engine: Any) -> Any:
    """OpenRLHF's single-turn executor: ``response`` generated for ``prompt``, rewarded by ``url``."""
    from openrlhf.utils.agent import SingleTurnAgentExecutor

    executor = SingleTurnAgentExecutor(remote_rm_url=url)
    params = SimpleNamespace(max_tokens=64, logprobs=None)
    output = await executor.execute(prompt, label, params, 256, tok, engine(tok, response))
    return output["reward"], output["extra_logs"]


async def rollout(url: str, response: str, label: Any) -> Any:
    prompt = "<|im_start|>user\nWhat is 2+2? Answer in JSON.<|im_end|>\n<|im_start|>assistant\n"
    return await rollout_with(url, prompt, response, label, tokenizer(), Engine)


def main() -> None:
    import openrlhf

    tmp = Path(tempfile.mkdtemp())
    answer, explained = (
        write_grader(tmp, ANSWER, "answer.json"),
        write_grader(tmp, EXPLAINED, "explained.json"),
    )
    result: dict[str, Any] = {"openrlhf": getattr(openrlhf, "__version__", "0.11.2")}
    args = ("--grader", f"answer={answer}", "--grader", f"explained={explained}", "--api-key", "K")
    with serve(*args, "--strip-tokens", "[END]") as url:
        good = '{"answer": "4"}'
        # The trap: OpenRLHF sends no authorization header (401, retried, then no reward).
        result["bearer_route"] = asyncio.run(rollout(f"{url}/v1/openrlhf/reward", good, "4"))
        token_url = f"{url}/v1/openrlhf/K/reward"
        result["token_route"] = asyncio.run(rollout(token_url, good, "4"))
        result["wrong_answer"] = asyncio.run(rollout(token_url, '{"answer": "5"}', "4"))
        result["custom_token"] = asyncio.run(rollout(token_url, good + "[END]", "4"))
        item = {"reference_answer": "4", "reference_explanation": "two and two"}
        why = '{"why": "two and two"}'
        result["label_object"] = asyncio.run(rollout(token_url + "?grader=explained", why, item))
        result["label_json_text"] = asyncio.run(
            rollout(token_url + "?grader=explained", why, json.dumps(item))
        )
        result["label_plain"] = asyncio.run(rollout(token_url + "?grader=explained", why, "4"))
    emit(result)


if __name__ == "__main__":
    sys.exit(main())
