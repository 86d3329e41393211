"""The batch scorer: one async engine for many judge requests at once.

It deduplicates identical requests, answers repeats from a cache, bounds
concurrency per backend, retries 429/5xx with exponential backoff and jitter
(honouring ``Retry-After``), and gives every request its own timeout, so one
slow or failing judge call never holds up the rest of a batch beyond it.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rftgrade._executors import JudgeReply, JudgeRequest
from rftgrade.judge._base import JudgeBackend, RetryableError
from rftgrade.judge._cache import ReplyCache
from rftgrade.judge._config import ModelRoute, RoutingConfig, load_routing

__all__ = ["BatchScorer", "ScorerStats"]


@dataclass
class ScorerStats:
    requests: int = 0
    unique: int = 0
    cache_hits: int = 0
    backend_calls: int = 0
    retries: int = 0
    failures: int = 0
    timeouts: int = 0


class BatchScorer:
    """A :class:`~rftgrade.JudgeExecutor` over routed backends.

    Args:
        routing: model routing (default: :func:`load_routing`).
        cache: keep replies in memory; ``cache_path`` adds a SQLite file on disk.
        backends: pre-built backends by route pattern (tests, or models already loaded).
        backoff: base delay in seconds of the retry backoff.
    """

    name = "batch-scorer"

    def __init__(
        self,
        routing: RoutingConfig | None = None,
        *,
        cache: bool = True,
        cache_path: str | Path | None = None,
        backends: dict[str, JudgeBackend] | None = None,
        backoff: float = 0.5,
    ) -> None:
        self.routing = routing if routing is not None else load_routing()
        self.cache = ReplyCache(path=cache_path) if cache else None
        self.backoff = backoff
        self.stats = ScorerStats()
        self._backends: dict[str, JudgeBackend] = dict(backends or {})
        self._limits: dict[str, asyncio.Semaphore] = {}

    # -- routing -------------------------------------------------------------
    def can_serve(self, model: str) -> str | None:
        if self.routing.route(model) is None:
            return (
                f"no backend serves model {model!r} (routing from {self.routing.source}); set "
                "OPENAI_BASE_URL / OPENAI_API_KEY, or route it in rftgrade-models.toml ($RFTGRADE_MODELS)"
            )
        return None

    def _backend(self, route: ModelRoute) -> JudgeBackend:
        backend = self._backends.get(route.pattern)
        if backend is None:
            if route.backend == "local":
                from rftgrade.judge.local import LocalBackend

                backend = LocalBackend.from_route(route)
            elif len(route.base_urls) > 1:
                import dataclasses

                from rftgrade.judge._balance import BalancedBackend
                from rftgrade.judge._openai import OpenAIBackend

                backend = BalancedBackend(
                    [
                        OpenAIBackend(dataclasses.replace(route, base_url=u, base_urls=()))
                        for u in route.base_urls
                    ],
                    backoff=max(self.backoff, 0.01) * 2,
                )
            else:
                from rftgrade.judge._openai import OpenAIBackend

                backend = OpenAIBackend(route)
            self._backends[route.pattern] = backend
        return backend

    def _semaphore(self, route: ModelRoute) -> asyncio.Semaphore:
        sem = self._limits.get(route.pattern)
        if sem is None:
            servers = max(1, len(route.base_urls))  # `concurrency` is per server
            sem = self._limits[route.pattern] = asyncio.Semaphore(max(1, route.concurrency) * servers)
        return sem

    # -- judging -------------------------------------------------------------
    async def judge(self, requests: Sequence[JudgeRequest]) -> list[JudgeReply]:
        self.stats.requests += len(requests)
        keys = [r.cache_key() for r in requests]
        unique: dict[str, JudgeRequest] = {}
        for key, request in zip(keys, requests, strict=True):
            unique.setdefault(key, request)
        self.stats.unique += len(unique)
        answers: dict[str, JudgeReply] = {}
        todo: list[tuple[str, JudgeRequest]] = []
        for key, request in unique.items():
            cached = self.cache.get(key) if self.cache is not None else None
            if cached is not None:
                self.stats.cache_hits += 1
                answers[key] = cached
            else:
                todo.append((key, request))
        replies = await asyncio.gather(*(self._one(request) for _, request in todo))
        for (key, _), reply in zip(todo, replies, strict=True):
            answers[key] = reply
            if self.cache is not None:
                self.cache.put(key, reply)
        return [answers[key] for key in keys]

    async def _one(self, request: JudgeRequest) -> JudgeReply:
        route = self.routing.route(request.model)
        if route is None:
            self.stats.failures += 1
            return JudgeReply(server_error=self.can_serve(request.model))
        try:
            backend = self._backend(route)
        except Exception as exc:
            self.stats.failures += 1
            return JudgeReply(
                server_error=f"backend for {request.model!r} failed to start: {type(exc).__name__}: {exc}"
            )
        attempt = 0
        while True:
            try:
                async with self._semaphore(route):
                    self.stats.backend_calls += 1
                    async with asyncio.timeout(route.timeout):
                        return await backend.complete(request)
            except TimeoutError:
                self.stats.timeouts += 1
                self.stats.failures += 1
                return JudgeReply(
                    server_error=f"timeout: no answer from {backend.name} within {route.timeout:g}s"
                )
            except RetryableError as exc:
                if attempt >= route.max_retries:
                    self.stats.failures += 1
                    return JudgeReply(server_error=f"{exc} (gave up after {attempt + 1} attempts)")
                attempt += 1
                self.stats.retries += 1
                delay = exc.retry_after if exc.retry_after is not None else self.backoff * 2 ** (attempt - 1)
                # Full jitter keeps a burst of 429s from retrying in lockstep.
                await asyncio.sleep(min(delay, 60.0) * random.uniform(0.5, 1.5))
            except Exception as exc:
                self.stats.failures += 1
                return JudgeReply(server_error=f"{type(exc).__name__}: {exc}")

    def snapshot(self) -> dict[str, Any]:
        return {**self.stats.__dict__, "cached_replies": len(self.cache) if self.cache is not None else 0}

    async def aclose(self) -> None:
        for backend in self._backends.values():
            await backend.aclose()
        if self.cache is not None:
            self.cache.close()
