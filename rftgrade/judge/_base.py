"""What a judge backend implements: answer a list of requests, one reply each."""

from __future__ import annotations

import abc
from collections.abc import Sequence

from rftgrade._executors import JudgeReply, JudgeRequest

__all__ = ["JudgeBackend", "RetryableError"]


class RetryableError(Exception):
    """A failure worth retrying (429, 5xx, timeouts, dropped connections)."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class JudgeBackend(abc.ABC):
    """One model server or local model. The :class:`BatchScorer` adds batching policy."""

    name: str = "?"

    @abc.abstractmethod
    async def complete(self, request: JudgeRequest) -> JudgeReply:
        """Answer one request. Raise :class:`RetryableError` for transient failures;
        any other exception is a server error for that request."""

    async def complete_many(self, requests: Sequence[JudgeRequest]) -> list[JudgeReply | BaseException]:
        """Answer several at once; backends that batch natively override this."""
        out: list[JudgeReply | BaseException] = []
        for request in requests:
            try:
                out.append(await self.complete(request))
            except Exception as exc:
                out.append(exc)
        return out

    async def aclose(self) -> None:
        return None
