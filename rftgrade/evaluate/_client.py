"""Sampling a model through any OpenAI-compatible Chat Completions endpoint.

One request per sample (``n=1``): Ollama and several hosted APIs ignore ``n``, and
one sample per request is also what makes a re-run resume sample by sample. The
official ``openai`` SDK's ``AsyncOpenAI`` does the HTTP; its own retries are off
because retrying is done here, where a sample that finally fails is reported as
*not sampled* instead of raising.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from dataclasses import dataclass, field
from typing import Any

from rftgrade._reasoning import final_answer
from rftgrade._toolcalls import split_tool_calls

__all__ = ["SamplingClient", "SamplingError", "SamplingStats", "build_sample", "request_body"]

_JSON_FORMATS = frozenset({"json_object", "json_schema"})


def request_body(
    item: dict[str, Any],
    *,
    model: str,
    temperature: float | None,
    max_tokens: int | None,
    response_format: Any = None,
) -> dict[str, Any]:
    """The ``chat.completions.create`` arguments for one dataset row.

    The row's ``messages`` are the prompt; ``tools`` and ``response_format`` are sent
    when the row has them (``response_format`` falls back to the job's). A final
    ``assistant`` turn (AWS Nova puts the reference answer there) is left out: the
    model is asked to answer the last user turn, not to continue the reference.
    """
    messages = list(item["messages"])
    while messages and isinstance(messages[-1], dict) and messages[-1].get("role") == "assistant":
        messages.pop()
    body: dict[str, Any] = {"model": model, "messages": messages}
    if temperature is not None:
        body["temperature"] = temperature
    if max_tokens is not None:
        body["max_tokens"] = max_tokens
    if item.get("tools"):
        body["tools"] = item["tools"]
        if item.get("tool_choice") is not None:
            body["tool_choice"] = item["tool_choice"]
    fmt = item.get("response_format", response_format)
    if fmt is not None:
        body["response_format"] = fmt
    return body


def build_sample(
    response: dict[str, Any],
    response_format: Any = None,
    reasoning: str = "strip",
    tool_calls: str = "parse",
    tools: Any = None,
) -> dict[str, Any]:
    """OpenAI's sample dict from a Chat Completions response (as a plain dict).

    ``output_text`` is the first choice's content (with ``reasoning="strip"``, its final
    answer: an endpoint without a reasoning parser leaves a reasoning model's
    ``<think>...</think>`` in the content, which OpenAI's grader never saw;
    :mod:`rftgrade._reasoning`), ``output_tools`` its ``tool_calls`` (with
    ``tool_calls="parse"``, read from the content when the endpoint has no tool parser
    and left them there, as the trainer adapters read them, an XML call's values typed by
    the request's ``tools``; :mod:`rftgrade._toolcalls`),
    ``choices`` the response's choices, and ``output_json`` the parsed text when the
    request asked for JSON (``response_format`` ``json_object``/``json_schema``) and
    the text parses; otherwise rftgrade derives it from the text as usual.
    """
    choices = response.get("choices") or []
    message = (choices[0] or {}).get("message") or {} if choices else {}
    content = message.get("content")
    text = content if isinstance(content, str) else ""
    calls = list(message.get("tool_calls") or [])
    split = (
        split_tool_calls(text, keep_reasoning=reasoning == "keep", tools=lambda: tools)
        if tool_calls == "parse" and not calls
        else None
    )
    if split is not None and split.tool_calls:
        text, calls = split.content, split.tool_calls
    elif reasoning == "strip":
        text = final_answer(text)
    sample: dict[str, Any] = {"output_text": text, "output_tools": calls, "choices": choices}
    if isinstance(response_format, dict) and response_format.get("type") in _JSON_FORMATS:
        try:
            sample["output_json"] = json.loads(text)
        except ValueError:
            pass  # left to the grader: a template reading it sets the usual flag
    return sample


@dataclass
class SamplingStats:
    """Counters of one run's requests, and how long the endpoint kept us waiting."""

    requests: int = 0
    retries: int = 0
    failed: int = 0
    request_seconds: float = 0.0
    """Sum of every request's latency (overlapping requests each count)."""
    busy_seconds: float = 0.0
    """Wall time during which at least one request was in flight."""
    _in_flight: int = field(default=0, repr=False)
    _busy_since: float = field(default=0.0, repr=False)

    def started(self) -> float:
        now = time.perf_counter()
        if self._in_flight == 0:
            self._busy_since = now
        self._in_flight += 1
        self.requests += 1
        return now

    def finished(self, since: float) -> None:
        now = time.perf_counter()
        self.request_seconds += now - since
        self._in_flight -= 1
        if self._in_flight == 0:
            self.busy_seconds += now - self._busy_since


class _Retryable(Exception):
    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class SamplingClient:
    """Samples with retries (429, 5xx, timeouts, refused connections) and backoff.

    Args:
        base_url: the endpoint (``.../v1``); ``None`` reads ``OPENAI_BASE_URL``.
        api_key: ``None`` reads ``OPENAI_API_KEY`` (a placeholder when unset: local
            servers need none).
        timeout: seconds one request may take before it is retried.
        max_retries: retries per sample after the first attempt.
        backoff: base delay of the exponential backoff, in seconds.
    """

    def __init__(
        self,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        timeout: float = 300.0,
        max_retries: int = 5,
        backoff: float = 1.0,
    ) -> None:
        import os

        from openai import AsyncOpenAI

        self.client = AsyncOpenAI(
            base_url=base_url or os.environ.get("OPENAI_BASE_URL") or None,
            api_key=api_key or os.environ.get("OPENAI_API_KEY") or "not-needed",
            max_retries=0,
            timeout=timeout,
        )
        self.base_url = str(self.client.base_url)
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff = backoff
        self.stats = SamplingStats()

    async def sample(self, body: dict[str, Any]) -> dict[str, Any]:
        """One completion as a plain dict.

        Raises:
            SamplingError: the endpoint failed on every attempt, or answered an error
                that retrying cannot fix (400, 401, 404...).
        """
        attempt = 0
        while True:
            since = self.stats.started()
            try:
                async with asyncio.timeout(self.timeout):
                    return await self._once(body)
            except TimeoutError:
                error = _Retryable(f"no answer within {self.timeout:g}s")
            except _Retryable as exc:
                error = exc
            finally:
                self.stats.finished(since)
            if attempt >= self.max_retries:
                self.stats.failed += 1
                raise SamplingError(f"{error} (gave up after {attempt + 1} attempts)")
            attempt += 1
            self.stats.retries += 1
            delay = error.retry_after if error.retry_after is not None else self.backoff * 2 ** (attempt - 1)
            # Full jitter: a burst of 429s must not come back in lockstep.
            await asyncio.sleep(min(delay, 60.0) * random.uniform(0.5, 1.5))

    async def _once(self, body: dict[str, Any]) -> dict[str, Any]:
        import openai

        try:
            response = await self.client.chat.completions.create(**body)
        except openai.RateLimitError as exc:
            raise _Retryable(f"429 from {self.base_url}: {_short(exc)}", _retry_after(exc)) from exc
        except openai.InternalServerError as exc:
            raise _Retryable(
                f"{exc.status_code} from {self.base_url}: {_short(exc)}", _retry_after(exc)
            ) from exc
        except openai.APITimeoutError as exc:
            raise _Retryable(f"timeout talking to {self.base_url}") from exc
        except openai.APIConnectionError as exc:
            raise _Retryable(f"cannot reach {self.base_url}: {_short(exc.__cause__ or exc)}") from exc
        except openai.APIStatusError as exc:
            self.stats.failed += 1
            raise SamplingError(
                f"{exc.status_code} from {self.base_url} (not retried): {_short(exc)}"
            ) from exc
        dumped: dict[str, Any] = response.model_dump(exclude_none=True)
        return dumped

    async def aclose(self) -> None:
        await self.client.close()


class SamplingError(Exception):
    """A sample the endpoint did not give; the message says why."""


def _short(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) <= 300 else text[:300] + "..."


def _retry_after(exc: Any) -> float | None:
    headers = getattr(getattr(exc, "response", None), "headers", None)
    if headers is None:
        return None
    try:
        if headers.get("retry-after-ms") is not None:
            return float(headers["retry-after-ms"]) / 1000
        if headers.get("retry-after") is not None:
            return float(headers["retry-after"])
    except ValueError:
        return None
    return None
