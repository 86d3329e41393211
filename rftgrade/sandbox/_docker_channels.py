"""The host's end of a docker worker: a unix socket it connected to, or the
container's attach stream (the fallback; stdout multiplexed with 8-byte headers).
Both kill the worker by removing its container and read its exit from the engine."""

from __future__ import annotations

import asyncio
import socket
import struct
from typing import Any

from rftgrade.sandbox._channel import Channel, ChannelClosed, encode

__all__ = ["AttachChannel", "ContainerChannel", "SocketChannel"]

_DEMUX = struct.Struct(">BxxxI")


class ContainerChannel(Channel):
    """A worker that is a container, reached over a non-blocking socket.

    Reads and writes stay independent (not an asyncio stream, whose transport drops
    unread replies when a write fails): a worker that dies while a chunk is being
    written to it still has every reply it sent before dying read, so the pool
    blames the right sample.
    """

    def __init__(self, container: Any, sock: socket.socket) -> None:
        self.container = container
        self.sock = sock
        sock.setblocking(False)
        self._buffer = bytearray()  # bytes of frames received and not yet read
        self._exit = "running"

    async def send(self, message: dict[str, Any]) -> None:
        loop = asyncio.get_running_loop()
        try:
            await loop.sock_sendall(self.sock, encode(message, self.marshal_version))
        except OSError as exc:
            raise ChannelClosed(str(exc)) from exc

    async def _receive(self, size: int) -> bytes:
        loop = asyncio.get_running_loop()
        try:
            chunk = await loop.sock_recv(self.sock, size)
        except OSError as exc:
            raise ChannelClosed(str(exc)) from exc
        if not chunk:
            raise ChannelClosed("the container closed its channel")
        return chunk

    def _take(self, n: int) -> bytes:
        out = bytes(self._buffer[:n])
        del self._buffer[:n]
        return out

    async def kill(self) -> None:
        try:
            self.container.reload()
            state = self.container.attrs.get("State", {})
            self._exit = f"exit code {state.get('ExitCode')}" + (
                ", OOM-killed" if state.get("OOMKilled") else ""
            )
        except Exception:
            self._exit = "gone"
        try:
            self.sock.close()
        except OSError:
            pass
        try:
            await asyncio.to_thread(self.container.remove, force=True)
        except Exception:  # already removed
            pass
        if self.progress is not None:
            self.progress.close()

    def describe_exit(self) -> str:
        return self._exit


class SocketChannel(ContainerChannel):
    """Frames over the unix socket the worker connected to (``--connect``)."""

    async def _read_exactly(self, n: int) -> bytes:
        while len(self._buffer) < n:
            self._buffer += await self._receive(max(1 << 16, n - len(self._buffer)))
        return self._take(n)


class AttachChannel(ContainerChannel):
    """Frames over a container's attach socket: stdout comes in frames of the
    engine's own (8-byte headers), which are unwrapped here."""

    def __init__(self, container: Any, sock: socket.socket, holder: Any) -> None:
        super().__init__(container, sock)
        self._holder = holder  # keeps the HTTP response (and so the socket) alive
        self._raw = bytearray()
        self._pending = 0  # bytes of the current stdout frame still to come
        self._skip = 0  # bytes of a non-stdout frame still to drop

    async def _fill(self) -> None:
        raw = self._raw
        raw += await self._receive(1 << 16)
        while raw:
            if self._skip:
                take = min(self._skip, len(raw))
                del raw[:take]
                self._skip -= take
            elif self._pending:
                take = min(self._pending, len(raw))
                self._buffer += raw[:take]
                del raw[:take]
                self._pending -= take
            elif len(raw) >= 8:
                stream, size = _DEMUX.unpack(bytes(raw[:8]))
                del raw[:8]
                if stream == 1:
                    self._pending = size
                else:
                    self._skip = size
            else:
                break

    async def _read_exactly(self, n: int) -> bytes:
        while len(self._buffer) < n:
            await self._fill()
        return self._take(n)
