"""The sandbox worker's wire: framing, its channel to the host, and the protocol itself.

Stdlib only; never imports rftgrade. Runs inside the sandbox (a Docker container,
a bubblewrap namespace, or a plain process) and talks to the host over a framed
protocol on its original stdout/stdin: each frame is a 4-byte big-endian length
followed by that many bytes: UTF-8 JSON, or (host to worker only, once the
worker has said which marshal version it reads) ``b"M"`` plus :mod:`marshal`
data. Protocol version 6 (v6: progress frames, below; the host's side is
``rftgrade/sandbox/_protocol.py``, and a test pins the two versions together):

    host -> {"op": "load", "v": 6, "source": str, "isolation": "worker"|"sample",
             "limits": {...}, "own_pid_namespace": bool}
    worker -> {"op": "loaded", "v": 6, "marshal": int, "ok": true}
              | {"op": "loaded", "v": 6, "ok": false, "error": {...}}
    host -> {"op": "grade", "id": int, "timeout": float, "samples": [...], "items": [...],
             "careful": bool}
            (instead of "items", "items_json": the items as the text of one JSON
            array, bytes under marshal: items the host received as JSON and never read;
            with "item_of": [int, ...], one per sample, the items are the chunk's
            distinct ones and sample i is graded with item item_of[i]; new in v4)
    worker -> {"op": "results", "id": int, "start": int, "rewards": [float|null, ...],
               "durations": [int, ...], "extra": [[offset, {...}], ...]} frames that
              answer the samples in order (every FLUSH_SECONDS and at the end; after
              every sample when "careful"); new in v6: a frame may carry
              "running": the request's index of the sample being graded when it
              was written, sent once per sample that has run PROGRESS_SECONDS (its
              "rewards" may then be empty). The host takes exactly one reply per
              sample, in order: anything else ends the worker
    host -> {"op": "ping"}  worker -> {"op": "pong"}

A sample is the model's text (a str) or a ``_wire`` dict (see ``expand_sample``).
Durations are nanoseconds. A reward is ``null`` when the call failed; ``extra`` then holds, at the sample's
offset in the frame, ``{"error": "runtime"|"timeout", "error_type": str,
"details": str}``; it also carries ``"stdout"`` (captured, bounded) and
``"recycle"`` (the worker exits after this frame).

Isolation ``worker`` runs ``grade`` in this process (fast). ``sample`` forks a
child per call (a crash, ``os._exit`` or leftover thread dies with the child).
The channel is stdin/stdout, or with ``--connect PATH`` a unix socket the host
listens on (the docker backend bind-mounts it). The reply channel is a private
duplicate of the original stdout (or the socket); fd 1 and 2 are pointed
elsewhere, so nothing the grader prints can forge a frame. With
``--progress-fd N`` (process and bwrap) or ``--connect PATH --progress`` (the
host then sends the descriptor first, with SCM_RIGHTS) the worker also gets the
host's progress page (``ProgressPage``), which it writes in ``worker`` isolation.
With ``--progress-file PATH`` (docker's attach channel) the page is a file the
worker makes there, on a tmpfs of the sandbox, for the host to read from outside.
"""

from __future__ import annotations

import contextlib
import gc
import json
import marshal
import os
import struct
from collections.abc import Iterator
from typing import Any

PROTOCOL_VERSION = 6
PROGRESS_SECONDS = 1.0  # a sample running this long gets a progress frame naming it
MAX_STDOUT = 8 * 1024
MAX_DETAILS = 4 * 1024
FLUSH_SECONDS = 0.05
_HEADER = struct.Struct(">I")
CONNECT_FAILED = 75  # EX_TEMPFAIL: `--connect PATH` could not reach the host


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Decoding a chunk makes thousands of containers, none of them garbage: the
    cyclic collector would only traverse them again and again while they load."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


class Channel:
    def __init__(self, rfd: int, wfd: int) -> None:
        self.rfd, self.wfd = rfd, wfd

    def _read_exact(self, n: int) -> bytes:
        chunks, got = [], 0
        while got < n:
            chunk = os.read(self.rfd, n - got)
            if not chunk:
                raise EOFError
            chunks.append(chunk)
            got += len(chunk)
        return b"".join(chunks)

    def recv(self) -> dict[str, Any]:
        (size,) = _HEADER.unpack(self._read_exact(4))
        data = self._read_exact(size)
        # The host (trusted) may send marshal, which loads several times faster
        # than JSON; the worker (untrusted) always answers in JSON.
        with gc_paused():
            result: dict[str, Any] = marshal.loads(data[1:]) if data[:1] == b"M" else json.loads(data)
        return result

    def send(self, message: dict[str, Any]) -> None:
        self.write(encode(message))

    def write(self, frames: bytes) -> None:
        view = memoryview(frames)
        while view:
            written = os.write(self.wfd, view)
            view = view[written:]


def encode(message: dict[str, Any]) -> bytes:
    # A lone surrogate (a grader may print one) becomes "?": the host's parser takes
    # only valid UTF-8 JSON.
    data = json.dumps(message, allow_nan=False, ensure_ascii=False).encode("utf-8", "replace")
    return _HEADER.pack(len(data)) + data


def connect(path: str, progress: bool) -> tuple[int, int | None]:
    """The host's unix socket, bind-mounted into the sandbox (the docker backend's
    direct channel: frames skip the engine's attach copy), and with ``progress``
    the progress page the host sends first over it. Exits with CONNECT_FAILED when
    the socket cannot be reached, so the host can fall back."""
    import socket

    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(path)
    except OSError as exc:
        os.write(2, f"rftgrade worker: cannot connect to {path}: {exc}\n".encode())
        os._exit(CONNECT_FAILED)
    page: int | None = None
    if progress:
        try:
            _, fds, _, _ = socket.recv_fds(sock, 1, 1)
            page = fds[0] if fds else None
        except OSError:
            page = None
    return sock.detach(), page


def progress_file(path: str) -> int | None:
    """The progress page as a file on a tmpfs of the sandbox (``--progress-file``:
    docker's attach channel, which cannot pass a descriptor); the host reads it from
    another process in the sandbox (``docker exec``) when the worker falls silent.
    Made before any grader code runs, and written in full now: a store into a page
    the tmpfs has not allocated yet would be a SIGBUS once a grader had filled it."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    except OSError:
        return None
    try:
        if os.write(fd, bytes(16)) == 16:
            return fd
    except OSError:
        pass
    os.close(fd)
    return None


class ProgressPage:
    """A page the host shares with the worker (``--progress-fd``): the request being
    graded and the index of the sample started last, one store per sample. The host
    reads it when the worker falls silent, so a sample blocked in C code holding the
    GIL (where no signal handler, so no progress frame, can run) is still named.
    Only in ``worker`` isolation: a forked sample must not be able to write it."""

    def __init__(self, fd: int) -> None:
        import mmap

        self.map = mmap.mmap(fd, 16)
        os.close(fd)
        self.slots = memoryview(self.map).cast("q")

    def begin(self, request_id: int) -> None:
        self.slots[1] = -1
        self.slots[0] = request_id


def not_dumpable() -> None:
    """prctl(PR_SET_DUMPABLE, 0): a forked sample (same uid) can then neither open
    this process's /proc/<pid>/mem or /proc/<pid>/fd/N (the channel), nor ptrace it,
    nor take its descriptors with pidfd_getfd or read it with process_vm_readv: all
    of these need the target dumpable when the caller has no CAP_SYS_PTRACE.
    Children inherit the flag; a program a sample execs is dumpable again, but it is
    the sample's own, not the worker."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(4, 0, 0, 0, 0) != 0:  # PR_SET_DUMPABLE
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_DUMPABLE, 0) failed")
