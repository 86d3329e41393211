"""A local Hugging Face ``transformers`` judge with dynamic batching (CUDA when present).

Requests that arrive within ``max_wait_ms`` of each other are padded into one
forward pass. Three modes:

- ``generate``: the model writes its verdict as text, which the grader parses
  exactly as it parses a server's reply;
- ``expected``: probability-weighted scores (G-Eval style): the prompt is followed
  by ``{"result": `` and the next-token distribution over the allowed score tokens
  (or label tokens) gives the expected score: a smooth reward instead of a step;
- ``reward_model``: a sequence-classification model whose logit is the score,
  mapped into the grader's range with a sigmoid.

Weights load from a local path only (``local_files_only``): nothing is downloaded.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rftgrade._executors import JudgeReply, JudgeRequest
from rftgrade._result import TokenUsage
from rftgrade.judge._base import JudgeBackend
from rftgrade.judge._config import ModelRoute

__all__ = ["LocalBackend", "score_candidates"]


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    parts = []
    for part in content or []:
        if isinstance(part, dict) and part.get("type") == "text":
            parts.append(str(part.get("text", "")))
        elif isinstance(part, dict) and part.get("type") == "image_url":
            parts.append("[image]")
        elif isinstance(part, dict) and part.get("type") == "input_audio":
            parts.append("[audio]")
    return "\n".join(parts)


def _format_hint(request: JudgeRequest) -> str:
    if request.kind == "label":
        return (
            'Reply with only a JSON object: {"steps": [{"description": "...", "conclusion": "..."}], '
            f'"result": one of {list(request.labels)}}}'
        )
    lo, hi = request.score_range
    return (
        'Reply with only a JSON object: {"steps": [{"description": "...", "conclusion": "..."}], '
        f'"result": a number from {lo:g} to {hi:g}}}'
    )


def score_candidates(lo: float, hi: float) -> list[tuple[str, float]]:
    """The score strings the ``expected`` mode reads probabilities for, with their values.

    Integer ranges of up to 10 steps use every integer (1..5, 0..10); anything
    else uses a 0..10 scale mapped linearly onto the range.
    """
    if float(lo).is_integer() and float(hi).is_integer() and 1 <= hi - lo <= 10:
        return [(str(int(v)), float(v)) for v in range(int(lo), int(hi) + 1)]
    return [(str(k), lo + (hi - lo) * k / 10) for k in range(11)]


@dataclass
class _Pending:
    request: JudgeRequest
    future: asyncio.Future[JudgeReply]


class LocalBackend(JudgeBackend):
    """Serves judge requests from an in-process ``transformers`` model."""

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        mode: str = "generate",
        name: str = "local",
        max_batch: int = 32,
        max_wait_ms: float = 5.0,
        max_new_tokens: int = 256,
    ) -> None:
        if mode not in ("generate", "expected", "reward_model"):
            raise ValueError(f"mode must be generate, expected or reward_model, not {mode!r}")
        self.model = model
        self.tokenizer = tokenizer
        self.mode = mode
        self.name = f"local:{name}"
        self.max_batch = max_batch
        self.max_wait = max_wait_ms / 1000
        self.max_new_tokens = max_new_tokens
        self.batches: list[int] = []
        """Sizes of the batches run so far (for tests and benchmarks)."""
        self._queue: asyncio.Queue[_Pending] | None = None
        self._worker: asyncio.Task[None] | None = None
        tokenizer.padding_side = "left"
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token

    @classmethod
    def from_route(cls, route: ModelRoute) -> LocalBackend:
        """Load the model a route names (local files only)."""
        import torch
        from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer

        if not route.path:
            raise ValueError(f"model route {route.pattern!r} has backend='local' but no path")
        device = route.device or ("cuda" if torch.cuda.is_available() else "cpu")
        dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
        tokenizer = AutoTokenizer.from_pretrained(route.path, local_files_only=True)
        loader = AutoModelForSequenceClassification if route.mode == "reward_model" else AutoModelForCausalLM
        model = loader.from_pretrained(route.path, local_files_only=True, dtype=dtype).to(device).eval()  # type: ignore[attr-defined,arg-type]
        return cls(
            model,
            tokenizer,
            mode=route.mode,
            name=route.pattern,
            max_batch=route.max_batch,
            max_wait_ms=route.max_wait_ms,
            max_new_tokens=route.max_new_tokens,
        )

    # -- dynamic batching ----------------------------------------------------
    async def complete(self, request: JudgeRequest) -> JudgeReply:
        if self._queue is None:
            self._queue = asyncio.Queue()
        if self._worker is None or self._worker.done():
            self._worker = asyncio.create_task(self._batcher())
        future: asyncio.Future[JudgeReply] = asyncio.get_running_loop().create_future()
        await self._queue.put(_Pending(request, future))
        return await future

    async def _batcher(self) -> None:
        assert self._queue is not None
        while True:
            first = await self._queue.get()
            batch = [first]
            deadline = asyncio.get_running_loop().time() + self.max_wait
            while len(batch) < self.max_batch:
                left = deadline - asyncio.get_running_loop().time()
                if left <= 0:
                    break
                try:
                    batch.append(await asyncio.wait_for(self._queue.get(), left))
                except TimeoutError:
                    break
            batch = [p for p in batch if not p.future.done()]
            if not batch:
                continue
            self.batches.append(len(batch))
            try:
                replies = await asyncio.to_thread(self._run, [p.request for p in batch])
            except Exception as exc:  # a failed forward pass fails its batch, not the server
                for pending in batch:
                    if not pending.future.done():
                        pending.future.set_exception(exc)
                continue
            for pending, reply in zip(batch, replies, strict=True):
                if not pending.future.done():
                    pending.future.set_result(reply)

    # -- the model -----------------------------------------------------------
    def _prompt(self, request: JudgeRequest) -> str:
        messages = [
            {"role": m["role"] if m["role"] != "developer" else "system", "content": _text(m["content"])}
            for m in request.messages
        ]
        if self.mode != "reward_model":
            messages.append({"role": "system", "content": _format_hint(request)})
        if getattr(self.tokenizer, "chat_template", None):
            try:
                return str(
                    self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
                )
            except Exception:  # templates that reject a trailing system turn, and the like
                pass
        return "".join(f"{m['role']}: {m['content']}\n" for m in messages) + "assistant: "

    def _run(self, requests: Sequence[JudgeRequest]) -> list[JudgeReply]:
        import torch

        with torch.inference_mode():
            if self.mode == "reward_model":
                return self._reward(requests)
            if self.mode == "expected":
                return self._expected(requests)
            return self._generate(requests)

    def _encode(self, prompts: list[str]) -> Any:
        enc = self.tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
        return {k: v.to(self.model.device) for k, v in enc.items()}

    def _generate(self, requests: Sequence[JudgeRequest]) -> list[JudgeReply]:
        import torch

        # Requests with different sampling settings would need separate passes; one
        # pass uses the first request's settings (a grader's requests share them).
        params = requests[0].sampling_params
        temperature = params.get("temperature")
        do_sample = bool(temperature and temperature > 0)
        if params.get("seed") is not None:
            torch.manual_seed(int(params["seed"]))
        enc = self._encode([self._prompt(r) for r in requests])
        max_new = int(params.get("max_completions_tokens") or self.max_new_tokens)
        kwargs: dict[str, Any] = {
            "max_new_tokens": min(max_new, self.max_new_tokens),
            "do_sample": do_sample,
            "pad_token_id": self.tokenizer.pad_token_id,
        }
        if do_sample:
            kwargs["temperature"] = float(temperature or 0.0)
            if params.get("top_p") is not None:
                kwargs["top_p"] = float(params["top_p"])
        out = self.model.generate(**enc, **kwargs)
        width = enc["input_ids"].shape[1]
        replies = []
        for row in range(len(requests)):
            new = out[row, width:]
            eos = self.tokenizer.eos_token_id
            n_new = (
                int((new != self.tokenizer.pad_token_id).sum())
                if eos != self.tokenizer.pad_token_id
                else len(new)
            )
            text = self.tokenizer.decode(new, skip_special_tokens=True)
            n_prompt = int(enc["attention_mask"][row].sum())
            replies.append(
                JudgeReply(text=text, usage=TokenUsage(n_prompt, n_new, n_prompt + n_new, 0), model=self.name)
            )
        return replies

    def _single_token_ids(self, options: Sequence[str]) -> list[int] | None:
        ids = []
        for option in options:
            encoded = self.tokenizer(option, add_special_tokens=False)["input_ids"]
            if not encoded:
                return None
            ids.append(int(encoded[0]))
        return ids if len(set(ids)) == len(ids) else None

    def _expected(self, requests: Sequence[JudgeRequest]) -> list[JudgeReply]:
        import torch

        prompts = []
        for r in requests:
            prompts.append(self._prompt(r) + ('{"result": "' if r.kind == "label" else '{"result": '))
        enc = self._encode(prompts)
        logits = self.model(**enc).logits[:, -1, :].float()
        probs = torch.softmax(logits, dim=-1)
        replies = []
        for row, request in enumerate(requests):
            n_prompt = int(enc["attention_mask"][row].sum())
            usage = TokenUsage(n_prompt, 1, n_prompt + 1, 0)
            if request.kind == "label":
                ids = self._single_token_ids(request.labels)
                if ids is None:
                    replies.append(
                        JudgeReply(
                            server_error="labels do not start with distinct tokens; "
                            "use mode='generate' for this grader",
                            model=self.name,
                        )
                    )
                    continue
                mass = probs[row, ids]
                total = float(mass.sum())
                dist = {
                    label: float(p) / total if total > 0 else 0.0
                    for label, p in zip(request.labels, mass, strict=True)
                }
                best = max(dist, key=lambda k: dist[k])
                replies.append(
                    JudgeReply(
                        text=f'{{"result": "{best}"}}', usage=usage, model=self.name, label_probabilities=dist
                    )
                )
                continue
            candidates = score_candidates(*request.score_range)
            ids = self._single_token_ids([text for text, _ in candidates])
            if ids is None:  # tokenizer merges multi-digit numbers: keep the single-token ones
                candidates = [
                    c
                    for c in candidates
                    if len(self.tokenizer(c[0], add_special_tokens=False)["input_ids"]) == 1
                ]
                ids = self._single_token_ids([text for text, _ in candidates]) or []
            mass = probs[row, ids] if ids else probs[row, :0]
            total = float(mass.sum())
            if not ids or total <= 0 or not math.isfinite(total):
                replies.append(JudgeReply(server_error="no probability on any score token", model=self.name))
                continue
            expected = sum(float(p) * value for p, (_, value) in zip(mass, candidates, strict=True)) / total
            replies.append(
                JudgeReply(
                    text=f'{{"result": {expected}}}', usage=usage, model=self.name, expected_score=expected
                )
            )
        return replies

    def _reward(self, requests: Sequence[JudgeRequest]) -> list[JudgeReply]:
        enc = self._encode([self._prompt(r) for r in requests])
        logits = self.model(**enc).logits[:, 0].float().tolist()
        replies = []
        for row, (request, logit) in enumerate(zip(requests, logits, strict=True)):
            lo, hi = request.score_range
            score = lo + (hi - lo) / (1 + math.exp(-logit))
            n_prompt = int(enc["attention_mask"][row].sum())
            replies.append(
                JudgeReply(
                    text=f'{{"result": {score}}}',
                    expected_score=score,
                    model=self.name,
                    usage=TokenUsage(n_prompt, 0, n_prompt, 0),
                )
            )
        return replies

    async def aclose(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
