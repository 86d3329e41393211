"""OpenRLHF: its remote-reward request as rftgrade rows, and the answer it reads.

OpenRLHF (``--reward.remote_url``, older ``--remote_rm_url``) posts
``{"query", "prompts", "labels"}`` with no headers; ``rftgrade serve`` answers it on
``/v1/openrlhf/reward`` and, for a server behind ``--api-key`` (OpenRLHF cannot send
one), on ``/v1/openrlhf/<token>/reward``. This module holds the translation; the
server's routes only call it.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict

from rftgrade._columns import Columns
from rftgrade.integrations._samples import SampleCounts, note_samples, openai_sample
from rftgrade.integrations.trainer_data import exported_item

__all__ = [
    "DEFAULT_STRIP_TOKENS",
    "OpenRLHFRequest",
    "openrlhf_answer",
    "openrlhf_columns",
    "openrlhf_rows",
    "path_token",
    "request_columns",
    "strip_special_tokens",
    "token_matches",
]

DEFAULT_STRIP_TOKENS: tuple[str, ...] = (
    "<|im_end|>",  # Qwen, ChatML
    "<|endoftext|>",  # Qwen, GPT-2
    "<|im_start|>",
    "<|eot_id|>",  # Llama 3
    "<|end_of_text|>",
    "<|start_header_id|>",
    "<|end_header_id|>",
    "<|eom_id|>",
    "</s>",  # Llama 2, Mistral
    "<s>",
    "<eos>",  # Gemma
    "<end_of_turn>",
    "<pad>",
    "<|end|>",  # Phi-3
    "<|return|>",  # gpt-oss
    "<|end▁of▁sentence|>",  # DeepSeek
    "<｜end▁of▁sentence｜>",  # noqa: RUF001
)
"""Special tokens OpenRLHF leaves in ``query`` (it decodes with special tokens kept)."""

TOKEN_ROUTE = "/v1/openrlhf/{token}/reward"
"""The route for servers behind ``--api-key``: the token in the path."""


def strip_special_tokens(text: str, tokens: Sequence[str] = DEFAULT_STRIP_TOKENS) -> str:
    """``text`` without ``tokens``; whitespace after the last real content is dropped
    with the trailing ones (``'{"a": 1}<|im_end|>\\n<|endoftext|>'`` -> ``'{"a": 1}'``)."""
    found = sorted(
        (t for t in tokens if t and t in text), key=len, reverse=True
    )  # longer first: one may contain another
    if not found:
        return text
    # Walk back over the trailing tokens and whitespace by index: a copy per token
    # would be quadratic in a completion that ends in many of them.
    end = len(text)
    while True:
        probe = end
        while probe and text[probe - 1].isspace():
            probe -= 1
        token = next((t for t in found if text.endswith(t, 0, probe)), None)
        if token is None:
            break
        end = probe - len(token)
    if end < len(text):
        text = text[:end].rstrip()
    for token in found:
        text = text.replace(token, "")
    return text


def openrlhf_columns(
    query: Sequence[str],
    prompts: Sequence[str] | None,
    labels: Sequence[Any] | None,
    strip_tokens: Sequence[str] = DEFAULT_STRIP_TOKENS,
    reasoning: str = "strip",
    tool_calls: str = "parse",
) -> Columns:
    """OpenRLHF's request as rows to grade.

    ``sample`` is ``query[i]`` with ``prompts[i]`` stripped from its front (the whole
    query when it does not start with the prompt), as OpenAI's grader saw it
    (:mod:`rftgrade.integrations._samples`): with ``reasoning="strip"`` its final answer
    alone (a reasoning model's ``<think>...</think>`` or gpt-oss's analysis channel cut),
    with ``tool_calls="parse"`` its tool calls as ``output_tools`` (a chat message),
    and ``strip_tokens`` removed. The item is ``labels[i]`` itself when it is a JSON
    object (or its text), with ``prompt`` and ``query`` added where it has none;
    otherwise ``{"prompt", "label", "reference_answer" (= label), "query"}``.
    """
    samples: list[Any] = []
    items: list[dict[str, Any]] = []
    prompts, labels = prompts or [], labels or []
    counts = SampleCounts()

    def clean(text: str) -> str:
        return strip_special_tokens(text, strip_tokens)

    for i, text in enumerate(query):
        prompt = prompts[i] if i < len(prompts) else ""
        label = labels[i] if i < len(labels) else None
        response = text[len(prompt) :] if prompt and text.startswith(prompt) else text
        item = exported_item(label)  # a JSON object (or its text) is the item itself
        if item is None:
            item = {"prompt": prompt, "label": label, "reference_answer": label, "query": text}
        else:
            item.setdefault("prompt", prompt)
            item.setdefault("query", text)
        samples.append(openai_sample(response, reasoning, tool_calls, counts, clean, item))
        items.append(item)
    note_samples("rftgrade serve's OpenRLHF route", counts, "OpenRLHF's --rollout.max_new_tokens")
    return Columns(samples, items)


class OpenRLHFRequest(BaseModel):
    """OpenRLHF's remote reward request (the server's body model for its routes)."""

    model_config = ConfigDict(extra="allow")

    query: list[str]
    prompts: list[str] | None = None
    labels: list[Any] | None = None


def request_columns(
    body: OpenRLHFRequest,
    strip_tokens: Sequence[str] = DEFAULT_STRIP_TOKENS,
    reasoning: str = "strip",
    tool_calls: str = "parse",
) -> Columns:
    """A parsed request's rows as :class:`~rftgrade.Columns` (what the server grades)."""
    return openrlhf_columns(body.query, body.prompts, body.labels, strip_tokens, reasoning, tool_calls)


def openrlhf_rows(
    body: OpenRLHFRequest, strip_tokens: Sequence[str] = DEFAULT_STRIP_TOKENS
) -> list[dict[str, Any]]:
    """A parsed request as rftgrade rows (``{"sample", "item"}``; see :func:`openrlhf_columns`)."""
    return request_columns(body, strip_tokens).rows()


def openrlhf_answer(results: Sequence[Any]) -> dict[str, Any]:
    """``{"rewards", "scores", "extra_logs"}`` for graded results: ``scores`` are the
    rewards clamped to [0, 1]; ``extra_logs`` has ``rftgrade_error`` and one
    ``rftgrade_<key>`` per sub-grader."""
    rewards = [r.reward for r in results]
    extra: dict[str, list[float]] = {"rftgrade_error": [0.0 if r.ok else 1.0 for r in results]}
    keys: dict[str, None] = {}
    for r in results:
        keys.update(dict.fromkeys(r.sub_rewards))
    for key in keys:
        extra[f"rftgrade_{key}"] = [float(r.sub_rewards.get(key, 0.0)) for r in results]
    return {"rewards": rewards, "scores": [min(max(x, 0.0), 1.0) for x in rewards], "extra_logs": extra}


def path_token(path: str) -> str | None:
    """The token of a ``/v1/openrlhf/<token>/reward`` path, else ``None``."""
    parts = path.split("/")
    if len(parts) == 5 and parts[:3] == ["", "v1", "openrlhf"] and parts[4] == "reward" and parts[3]:
        return parts[3]
    return None


def token_matches(given: str, api_key: bytes) -> bool:
    """Constant-time comparison of a path token with the server's key."""
    return hmac.compare_digest(given.encode(), api_key)


def merged_tokens(extra: Iterable[str]) -> tuple[str, ...]:
    """The default tokens plus ``extra`` (``--strip-tokens``), each once."""
    return tuple(dict.fromkeys([*DEFAULT_STRIP_TOKENS, *(t for t in extra if t)]))
