"""The host's end of a docker worker: a unix socket it connected to, or the
container's attach stream (the fallback; stdout multiplexed with 8-byte headers).
Both kill the worker by removing its container and read its exit from the engine.
Over attach, where no descriptor can be passed, the worker's progress page is a
file on the container's ``/dev/shm``, read with ``docker exec`` when it falls silent."""

from __future__ import annotations

import asyncio
import socket
import struct
from typing import Any

from rftgrade.sandbox._channel import Channel, ChannelClosed, encode
from rftgrade.sandbox._engine import ContainerRef

__all__ = ["PROGRESS_FILE", "AttachChannel", "ContainerChannel", "SocketChannel"]

_DEMUX = struct.Struct(">BxxxI")
# The attach worker's progress page (``--progress-file``): /dev/shm is a tmpfs of the
# container's own (private IPC) and writable under its read-only root, and no
# sample's clean-up of /tmp reaches it.
PROGRESS_FILE = "/dev/shm/rftgrade-progress"
_PAGE = struct.Struct("=qq")  # the request, the sample started last (sandbox/_rftgrade_wire.py)
_PAGE_SECONDS = 3.0  # an exec normally answers in ~0.1 s; past this the sample is not known


class ContainerChannel(Channel):
    """A worker that is a container, reached over a non-blocking socket.

    Reads and writes stay independent (not an asyncio stream, whose transport drops
    unread replies when a write fails): a worker that dies while a chunk is being
    written to it still has every reply it sent before dying read, so the pool
    blames the right sample.
    """

    def __init__(self, container: ContainerRef, sock: socket.socket) -> None:
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
        # Shielded: a caller cancelled meanwhile must not leave the container running.
        await asyncio.shield(self._kill())

    async def _kill(self) -> None:
        # The engine's requests run off the event loop: it serves every other worker
        # (and, in the server, every client) meanwhile.
        await asyncio.to_thread(self._read_exit)
        try:
            self.sock.close()
        except OSError:
            pass
        try:
            await asyncio.to_thread(self.container.remove)
        except Exception:  # already removed
            pass
        if self.progress is not None:
            self.progress.close()

    def _read_exit(self) -> None:
        try:
            self.container.reload()
            state = self.container.attrs.get("State", {})
            self._exit = f"exit code {state.get('ExitCode')}" + (
                ", OOM-killed" if state.get("OOMKilled") else ""
            )
        except Exception:
            self._exit = "gone"

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

    def __init__(self, container: ContainerRef, sock: socket.socket, holder: Any, sdk_container: Any) -> None:
        super().__init__(container, sock)
        self._holder = holder  # keeps the HTTP response (and so the socket) alive
        self._sdk_container = sdk_container  # the SDK's model of it, for exec
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

    async def started_last(self, request_id: int) -> int | None:
        """Read from another process in the container: one blocked in C code holding
        its GIL does not stop that. A missing, short or stale page says nothing."""
        try:
            raw = await asyncio.wait_for(asyncio.to_thread(self._read_page), _PAGE_SECONDS)
        except Exception:  # the exec timed out, or the engine refused it (e.g. no pids left)
            return None
        if raw is None or len(raw) != _PAGE.size:
            return None
        current, index = _PAGE.unpack(raw)
        return index if current == request_id and index >= 0 else None

    def _read_page(self) -> bytes | None:
        # head -c: the grader may have swapped the file for a link to /dev/zero.
        code, out = self._sdk_container.exec_run(
            ["/bin/head", "-c", str(_PAGE.size), PROGRESS_FILE], stderr=False
        )
        return out if code == 0 and isinstance(out, bytes) else None
