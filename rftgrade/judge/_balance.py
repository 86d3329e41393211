"""One model on several OpenAI-compatible servers (e.g. one vLLM per GPU node).

:class:`BalancedBackend` sends each request to the server with the fewest
requests outstanding, skips a server that erred until its backoff ends (doubling
with each error in a row, reset by a success), and on a retryable failure tries
the next server at once. A request gets exactly one reply: a failed attempt
returns nothing, so a fail-over never answers (or counts) a request twice.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from rftgrade._executors import JudgeReply, JudgeRequest
from rftgrade.judge._base import JudgeBackend, RetryableError

__all__ = ["BalancedBackend"]


@dataclass(eq=False)
class _Server:
    backend: JudgeBackend
    outstanding: int = 0
    errors_in_a_row: int = 0
    backed_off_until: float = 0.0
    answered: int = 0
    failed: int = 0


class BalancedBackend(JudgeBackend):
    """Balances one route over several backends on outstanding requests, with fail-over.

    Args:
        backends: one per server.
        backoff: seconds a server is skipped after its first error in a row (doubles after each).
        max_backoff: the longest it is skipped.
    """

    def __init__(
        self, backends: list[JudgeBackend], *, backoff: float = 1.0, max_backoff: float = 30.0
    ) -> None:
        if not backends:
            raise ValueError("a balanced route needs at least one server")
        self.servers = [_Server(b) for b in backends]
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.name = "balanced:" + ",".join(b.name for b in backends)

    def _pick(self, tried: set[_Server]) -> _Server | None:
        now = time.monotonic()
        left = [s for s in self.servers if s not in tried]
        if not left:
            return None
        # Healthy servers first, least loaded first; a backed-off one only when every
        # other was tried, so that a request is still attempted while all are backing off.
        return min(left, key=lambda s: (s.backed_off_until > now, s.outstanding, s.backed_off_until))

    async def complete(self, request: JudgeRequest) -> JudgeReply:
        tried: set[_Server] = set()
        last: RetryableError | None = None
        while (server := self._pick(tried)) is not None:
            tried.add(server)
            server.outstanding += 1
            try:
                reply = await server.backend.complete(request)
            except RetryableError as exc:
                server.failed += 1
                server.errors_in_a_row += 1
                delay = min(self.max_backoff, self.backoff * 2 ** (server.errors_in_a_row - 1))
                server.backed_off_until = time.monotonic() + delay
                last = exc
                continue
            finally:
                server.outstanding -= 1
            server.errors_in_a_row = 0
            server.backed_off_until = 0.0
            server.answered += 1
            return reply
        assert last is not None
        # Every server failed this round: the scorer's retry (with its backoff) tries again.
        raise RetryableError(f"all {len(self.servers)} servers failed; last: {last}", last.retry_after)

    def snapshot(self) -> list[dict[str, object]]:
        """Per server: its name, requests answered and attempts failed."""
        return [
            {
                "server": s.backend.name,
                "answered": s.answered,
                "failed": s.failed,
                "outstanding": s.outstanding,
            }
            for s in self.servers
        ]

    async def aclose(self) -> None:
        for server in self.servers:
            await server.backend.aclose()
