"""The host's end of a worker: send a frame, receive a frame with a deadline, kill.

Frames are 4-byte big-endian lengths plus UTF-8 JSON, or, host to worker once
the worker has said it reads it, ``b"M"`` plus :mod:`marshal` data (see
``sandbox/_rftgrade_wire.py``; what the frames say is :mod:`rftgrade.sandbox._protocol`). Nothing the worker sends is ever unmarshalled: the host
reads only JSON from the sandbox, with one strict parser (no fallback that would
accept what it refuses: a 400-digit integer, an escaped lone surrogate), in
frames of at most ``MAX_FRAME`` bytes.
"""

from __future__ import annotations

import abc
import asyncio
import fcntl
import json
import marshal
import mmap
import os
import struct
from typing import Any

from rftgrade._json import dumps

try:
    import orjson
except ImportError:  # pragma: no cover - orjson ships with the sandbox extra
    orjson = None  # type: ignore[assignment]

__all__ = ["Channel", "ChannelClosed", "PipeChannel", "ProgressPage", "encode"]

_HEADER = struct.Struct(">I")
_PIPE_BYTES = 1 << 20  # the default /proc/sys/fs/pipe-max-size: no privilege needed
# A chunk's reply: 1,024 samples of at most 8 KiB stdout and 4 KiB details each,
# with room for JSON escapes. A bigger frame ends the worker; the rest of its
# chunk is re-run a sample per frame, so only a sample that floods alone is lost.
MAX_FRAME = 24 * 1024 * 1024


def _refuse(text: str) -> Any:
    raise ValueError(f"number {text[:40]} out of range")


def _bounded_int(text: str) -> int:
    if len(text) > 20:  # past 64 bits: what orjson refuses too
        raise ValueError(f"integer of {len(text)} digits")
    return int(text)


def loads(raw: bytes) -> Any:
    """The sandbox channel's one JSON parser."""
    if orjson is not None:
        return orjson.loads(raw)
    return json.loads(raw, parse_int=_bounded_int, parse_constant=_refuse)  # pragma: no cover


class ChannelClosed(Exception):
    """The worker went away (exited, was killed, or broke the protocol)."""


def encode(message: dict[str, Any], marshal_version: int | None = None) -> bytes:
    """One frame. With ``marshal_version`` (what the worker reads), marshal when it can:
    the worker loads it several times faster than JSON, and decoding is its main cost
    besides grading."""
    if marshal_version is not None:
        try:
            data = marshal.dumps(message, min(marshal_version, marshal.version))
            return b"".join((_HEADER.pack(len(data) + 1), b"M", data))
        except ValueError:  # an object marshal cannot write (a caller's own type): JSON below
            pass
    data = dumps(message, default=_default)
    return _HEADER.pack(len(data)) + data


def _default(value: Any) -> Any:
    return repr(value)


class ProgressPage:
    """A page of memory shared with one worker (``sandbox/_rftgrade_wire.py``'s
    ``ProgressPage``): the worker stores the request it grades and the index of each
    sample as it starts it. Read when the worker falls silent, it names a sample
    blocked in C code holding the GIL, which no progress frame can. What it says
    only picks which of the request's unanswered samples is flagged."""

    def __init__(self) -> None:
        self.fd = os.memfd_create("rftgrade-progress", os.MFD_CLOEXEC)
        os.ftruncate(self.fd, 16)
        self._map = mmap.mmap(self.fd, 16)
        self._slots = memoryview(self._map).cast("q")

    def running(self, request_id: int) -> int | None:
        """The request's index of the sample the worker started last, if it is grading ``request_id``."""
        if self._slots is None or self._slots[0] != request_id:
            return None
        index = self._slots[1]
        return index if index >= 0 else None

    def hand_over(self) -> None:
        """Close the host's descriptor once the worker has its own."""
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def close(self) -> None:
        self.hand_over()
        if self._slots is not None:
            self._slots.release()
            self._slots = None  # type: ignore[assignment]
            self._map.close()


class Channel(abc.ABC):
    """A live worker."""

    marshal_version: int | None = None
    """The marshal version the worker reads (from its ``loaded`` reply); ``None``: JSON only."""
    progress: ProgressPage | None = None
    """The worker's progress page, where its backend can share one."""

    @abc.abstractmethod
    async def send(self, message: dict[str, Any]) -> None: ...

    async def started_last(self, request_id: int) -> int | None:
        """The request's index of the sample the worker started last, from its
        progress page, if it is grading ``request_id`` (``None``: not known)."""
        return self.progress.running(request_id) if self.progress is not None else None

    @abc.abstractmethod
    async def _read_exactly(self, n: int) -> bytes: ...

    async def recv(self, timeout: float | None) -> dict[str, Any]:
        """Next frame, or :class:`ChannelClosed`; :class:`TimeoutError` past ``timeout``."""

        async def read() -> dict[str, Any]:
            (size,) = _HEADER.unpack(await self._read_exactly(4))
            if size > MAX_FRAME:
                raise ChannelClosed(f"worker sent a {size}-byte frame")
            try:
                raw = await self._read_exactly(size)
                message: dict[str, Any] = loads(raw)
            except ValueError as exc:  # orjson.JSONDecodeError is a ValueError
                raise ChannelClosed(f"worker sent a malformed frame: {exc}") from exc
            return message

        if timeout is None:
            return await read()
        return await asyncio.wait_for(read(), timeout)

    @abc.abstractmethod
    async def kill(self) -> None:
        """Kill the worker and everything it started; never raises."""

    @abc.abstractmethod
    def describe_exit(self) -> str:
        """How the worker ended (exit code, signal, OOM), for error details."""


class PipeChannel(Channel):
    """A worker that is a local subprocess (process and bwrap backends)."""

    def __init__(self, proc: asyncio.subprocess.Process, progress: ProgressPage | None = None) -> None:
        self.proc = proc
        self.progress = progress
        _widen(proc.stdin)

    async def send(self, message: dict[str, Any]) -> None:
        stdin = self.proc.stdin
        if stdin is None or stdin.is_closing():
            raise ChannelClosed("worker stdin is closed")
        try:
            stdin.write(encode(message, self.marshal_version))
            await stdin.drain()
        except (BrokenPipeError, ConnectionResetError) as exc:
            raise ChannelClosed(str(exc)) from exc

    async def _read_exactly(self, n: int) -> bytes:
        assert self.proc.stdout is not None
        try:
            return await self.proc.stdout.readexactly(n)
        except asyncio.IncompleteReadError as exc:
            raise ChannelClosed("worker closed its output") from exc

    async def kill(self) -> None:
        if self.proc.returncode is None:
            try:
                self.proc.kill()
            except ProcessLookupError:
                pass
        try:
            await asyncio.wait_for(self.proc.wait(), 10)
        except (TimeoutError, ProcessLookupError):
            pass
        if self.progress is not None:
            self.progress.close()

    def describe_exit(self) -> str:
        code = self.proc.returncode
        if code is None:
            return "still running"
        return f"killed by signal {-code}" if code < 0 else f"exit code {code}"


def _widen(stream: asyncio.StreamWriter | None) -> None:
    """Let a chunk of 1 MiB sit in the pipe to the worker (Linux's default is 64 KiB).

    A 1,024-sample chunk is ~0.7 MB: in a default pipe it goes in a dozen writes,
    each waiting for the worker to read the one before, and the host's event loop
    wakes for every one. Side by side, ``rftgrade grade --sandbox bwrap`` on 50,000
    rows took ~4% less time. Best effort: past ``/proc/sys/fs/pipe-max-size``, or
    where the call does not exist, the pipe keeps its size.
    """
    setsize = getattr(fcntl, "F_SETPIPE_SZ", None)
    pipe = stream.transport.get_extra_info("pipe") if stream is not None else None
    if setsize is None or pipe is None:
        return
    try:
        fcntl.fcntl(pipe.fileno(), setsize, _PIPE_BYTES)
    except OSError:
        pass
