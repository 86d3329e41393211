"""Any OpenAI-compatible chat server, through the official ``openai`` client."""

from __future__ import annotations

from typing import Any

from rftgrade._executors import JudgeReply, JudgeRequest
from rftgrade._result import TokenUsage
from rftgrade.judge._base import JudgeBackend, RetryableError
from rftgrade.judge._config import ModelRoute

__all__ = ["OpenAIBackend"]


def _request_kwargs(request: JudgeRequest, route: ModelRoute, structured: bool) -> dict[str, Any]:
    params = request.sampling_params
    kwargs: dict[str, Any] = {
        "model": route.served_name or request.model,
        "messages": list(request.messages),
    }
    if params.get("temperature") is not None:
        kwargs["temperature"] = params["temperature"]
    if params.get("top_p") is not None:
        kwargs["top_p"] = params["top_p"]
    if params.get("seed") is not None:
        kwargs["seed"] = params["seed"]
    if params.get("max_completions_tokens") is not None:
        # OpenAI's grader field is plural; the Chat Completions parameter is not.
        kwargs["max_completion_tokens"] = params["max_completions_tokens"]
    if params.get("reasoning_effort") is not None:
        kwargs["reasoning_effort"] = params["reasoning_effort"]
    if structured and request.response_schema is not None:
        name = "float_score_classification" if request.kind == "score" else "label_classification"
        kwargs["response_format"] = {
            "type": "json_schema",
            "json_schema": {"name": name, "strict": True, "schema": request.response_schema},
        }
    return kwargs


def _usage(raw: Any) -> TokenUsage | None:
    if raw is None:
        return None
    details = getattr(raw, "prompt_tokens_details", None)
    cached = getattr(details, "cached_tokens", 0) if details is not None else 0
    prompt, completion = int(raw.prompt_tokens or 0), int(raw.completion_tokens or 0)
    return TokenUsage(prompt, completion, int(raw.total_tokens or prompt + completion), int(cached or 0))


class OpenAIBackend(JudgeBackend):
    """Chat Completions with a strict JSON-schema response format, falling back to plain
    text (parsed by the grader) when a server does not support structured output."""

    def __init__(self, route: ModelRoute) -> None:
        from openai import AsyncOpenAI

        self.route = route
        self.name = f"openai:{route.base_url or 'default'}"
        # Retries are the BatchScorer's job (with jitter and Retry-After), not the client's.
        self.client = AsyncOpenAI(
            base_url=route.base_url,
            api_key=route.api_key or "not-needed",
            max_retries=0,
            timeout=route.timeout,
        )
        self.structured = route.structured_output

    async def complete(self, request: JudgeRequest) -> JudgeReply:
        import openai

        try:
            response = await self.client.chat.completions.create(
                **_request_kwargs(request, self.route, self.structured)
            )
        except openai.BadRequestError as exc:
            if self.structured and "response_format" in str(exc):
                # The server does not do json_schema: ask for plain text from now on.
                self.structured = False
                return await self.complete(request)
            raise
        except openai.RateLimitError as exc:
            raise RetryableError(f"429 from {self.name}: {exc}", _retry_after(exc)) from exc
        except openai.InternalServerError as exc:
            raise RetryableError(f"{exc.status_code} from {self.name}: {exc}", _retry_after(exc)) from exc
        except (openai.APITimeoutError, openai.APIConnectionError) as exc:
            raise RetryableError(f"{type(exc).__name__} talking to {self.name}: {exc}") from exc
        choice = response.choices[0] if response.choices else None
        message = choice.message if choice is not None else None
        return JudgeReply(
            text=message.content if message is not None else None,
            refusal=getattr(message, "refusal", None) if message is not None else None,
            usage=_usage(response.usage),
            model=response.model or request.model,
        )

    async def aclose(self) -> None:
        await self.client.close()


def _retry_after(exc: Any) -> float | None:
    response = getattr(exc, "response", None)
    value = response.headers.get("retry-after") if response is not None else None
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None
