"""``docker`` backend: one hardened container per worker, driven over the attach socket.

Each worker is a container of the sandbox image (``rftgrade sandbox build``) run
with: no network (``network_mode=none``), a read-only root, a size-limited tmpfs
``/tmp``, memory = memory+swap limit, a CPU quota, a pids limit, every capability
dropped, ``no-new-privileges``, a non-root user, ``init`` (tini reaps zombies),
an empty environment, private IPC and no log driver (a stdout flood cannot fill
the host's disk). Requests go over the container's attach socket, never
``exec_run`` (no timeout, ~100 ms a call). Containers are labelled with their
owner and always removed: on kill, at close, and, for owners that died without
cleaning up, when the next backend starts on this host.
"""

from __future__ import annotations

import asyncio
import os
import socket
import struct
import uuid
from typing import Any

from rftgrade.sandbox._backend import SandboxBackend
from rftgrade.sandbox._channel import Channel, ChannelClosed, encode
from rftgrade.sandbox._limits import Limits

__all__ = ["LABEL", "DockerBackend", "reap_stale_containers"]

LABEL = "rftgrade.sandbox"
IMAGE = os.environ.get("RFTGRADE_SANDBOX_IMAGE", "rftgrade/sandbox:latest")
_HOST = socket.gethostname()
_DEMUX = struct.Struct(">BxxxI")


def _client() -> Any:
    import docker

    return docker.from_env(max_pool_size=64, timeout=60)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def reap_stale_containers(client: Any | None = None, *, everything_of_mine: bool = False) -> int:
    """Remove sandbox containers whose owning process on this host is gone."""
    client = client or _client()
    removed = 0
    for container in client.containers.list(all=True, filters={"label": LABEL}):
        owner = container.labels.get(f"{LABEL}.owner", "")
        host, _, pid = owner.rpartition(":")
        mine = host == _HOST and pid.isdigit()
        if mine and ((everything_of_mine and int(pid) == os.getpid()) or not _pid_alive(int(pid))):
            try:
                container.remove(force=True)
                removed += 1
            except Exception:  # already gone
                pass
    return removed


class DockerBackend(SandboxBackend):
    name = "docker"
    isolated = True
    own_pid_namespace = True

    def __init__(self, image: str = IMAGE) -> None:
        self.image = image
        self.client = _client()
        self.owner = f"{_HOST}:{os.getpid()}"
        reap_stale_containers(self.client)

    @classmethod
    def unavailable_reason(cls) -> str | None:
        try:
            import docker
        except ImportError:
            return "the docker SDK is not installed (pip install 'rftgrade[sandbox]')"
        try:
            client = docker.from_env(timeout=10)
            client.ping()
        except Exception as exc:
            return f"no Docker engine answers ({type(exc).__name__}); start dockerd or use --sandbox bwrap"
        try:
            client.images.get(IMAGE)
        except Exception:
            return f"the sandbox image {IMAGE} is missing; build it with `rftgrade sandbox build --backend docker`"
        return None

    def _run_container(self, limits: Limits) -> Any:
        from docker.types import LogConfig

        return self.client.containers.run(
            self.image,
            detach=True,
            stdin_open=True,
            tty=False,
            name=f"rftgrade-{uuid.uuid4().hex[:12]}",
            labels={LABEL: "1", f"{LABEL}.owner": self.owner},
            network_mode="none",
            read_only=True,
            tmpfs={"/tmp": f"rw,nosuid,nodev,size={limits.disk_bytes}"},
            mem_limit=limits.memory_bytes,
            memswap_limit=limits.memory_bytes,
            nano_cpus=int(limits.cpus * 1e9),
            pids_limit=limits.pids,
            cap_drop=["ALL"],
            security_opt=["no-new-privileges"],
            user="10001:10001",
            init=True,
            environment={},
            ipc_mode="private",
            log_config=LogConfig(type="none"),
        )

    async def spawn(self, limits: Limits) -> Channel:
        container = await asyncio.to_thread(self._run_container, limits)
        try:
            sock = await asyncio.to_thread(
                self.client.api.attach_socket,
                container.id,
                params={"stdin": 1, "stdout": 1, "stderr": 0, "stream": 1},
            )
        except Exception:
            await asyncio.to_thread(container.remove, force=True)
            raise
        raw = getattr(sock, "_sock", sock)
        raw.setblocking(False)
        return _AttachChannel(container, raw, sock)

    async def aclose(self) -> None:
        await asyncio.to_thread(reap_stale_containers, self.client, everything_of_mine=True)


class _AttachChannel(Channel):
    """Frames over a container's attach socket (stdout is multiplexed with 8-byte headers)."""

    def __init__(self, container: Any, raw: socket.socket, holder: Any) -> None:
        self.container = container
        self.raw = raw
        self._holder = holder  # keeps the HTTP response (and so the socket) alive
        self._buffer = bytearray()
        self._raw = bytearray()
        self._pending = 0  # bytes of the current stdout frame still to come
        self._skip = 0  # bytes of a non-stdout frame still to drop
        self._exit = "running"

    async def send(self, message: dict[str, Any]) -> None:
        loop = asyncio.get_running_loop()
        try:
            await loop.sock_sendall(self.raw, encode(message, self.marshal_version))
        except OSError as exc:
            raise ChannelClosed(str(exc)) from exc

    async def _fill(self) -> None:
        loop = asyncio.get_running_loop()
        chunk = await loop.sock_recv(self.raw, 1 << 16)
        if not chunk:
            raise ChannelClosed("the container closed its output")
        raw = self._raw
        raw += chunk
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
            self.raw.close()
        except OSError:
            pass
        try:
            await asyncio.to_thread(self.container.remove, force=True)
        except Exception:  # already removed
            pass

    def describe_exit(self) -> str:
        return self._exit
