"""uvicorn's HTTP/1.1 protocol with a header timeout and a connection cap that leaves room.

uvicorn times out idle keep-alive connections, but not a connection that has sent
part of its first request's headers: 1,100 such half-open connections held the
server's descriptors and starved an honest request. Here each connection must
finish a request's headers within ``header_timeout`` seconds of arriving (or of
its last response), and at ``max_connections`` a new connection closes the
longest-waiting one that has no request in progress, so a client that opens
connections and sends nothing cannot keep others out; when every connection is
busy with a request, the new one is refused instead.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

__all__ = ["HEADER_TIMEOUT", "MAX_CONNECTIONS", "uvicorn_options"]

HEADER_TIMEOUT = 10.0
MAX_CONNECTIONS = 1000


class _GuardedH11(H11Protocol):
    header_timeout = HEADER_TIMEOUT
    max_connections = MAX_CONNECTIONS
    header_timer: asyncio.TimerHandle | None = None
    header_deadline = 0.0
    refused = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        if len(self.connections) >= self.max_connections and not self._evict_idle():
            self.refused = True  # every connection is busy with a request: refuse this one
            transport.close()
            return
        super().connection_made(transport)
        self._arm_header_timer()

    def _arm_header_timer(self) -> None:
        self.header_deadline = self.loop.time() + self.header_timeout
        self.header_timer = self.loop.call_later(self.header_timeout, self._header_timed_out)

    def _header_timed_out(self) -> None:
        if self.cycle is None or self.cycle.response_complete:  # still no request headers
            self.transport.close()

    def _evict_idle(self) -> bool:
        """Close the connection waiting longest for its request's headers."""
        idle = [
            c
            for c in self.connections
            if isinstance(c, _GuardedH11) and (c.cycle is None or c.cycle.response_complete)
        ]
        if not idle:
            return False
        oldest = min(idle, key=lambda c: c.header_deadline)
        oldest.transport.close()
        oldest.connections.discard(oldest)
        return True

    def handle_events(self) -> None:
        super().handle_events()
        if self.cycle is not None and not self.cycle.response_complete:
            timer = getattr(self, "header_timer", None)
            if timer is not None:  # the request's headers are in: no header deadline now
                timer.cancel()
                self.header_timer = None

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm_header_timer()  # the next request on this connection gets its own

    def connection_lost(self, exc: Exception | None) -> None:
        if getattr(self, "refused", False):
            return  # never set up
        timer = getattr(self, "header_timer", None)
        if timer is not None:
            timer.cancel()
        super().connection_lost(exc)


def uvicorn_options(
    header_timeout: float = HEADER_TIMEOUT, max_connections: int = MAX_CONNECTIONS
) -> dict[str, Any]:
    """Keyword arguments for ``uvicorn.run``/``uvicorn.Config``: the guarded protocol,
    a 5 s keep-alive idle timeout and a 64 KiB header limit."""
    protocol = type(
        "GuardedH11", (_GuardedH11,), {"header_timeout": header_timeout, "max_connections": max_connections}
    )
    return {
        "http": protocol,
        "timeout_keep_alive": 5,
        "h11_max_incomplete_event_size": 64 * 1024,
    }
