"""``docker`` backend: one hardened container per worker, driven over a unix socket.

Each worker is a container of the sandbox image (``rftgrade sandbox build``) run
with: no network (``network_mode=none``), a read-only root, a size-limited tmpfs
``/tmp``, memory = memory+swap limit, a CPU quota, a pids limit, every capability
dropped, ``no-new-privileges``, rftgrade's seccomp profile (``_seccomp``), a
non-root user, the worker as pid 1 (it reaps and kills what its graders leave),
an empty environment, private IPC and no log driver (a stdout flood cannot fill
the host's disk). Requests never use ``exec_run`` (no timeout, ~100 ms a call);
the attach channel's one exec reads a silent worker's progress page.

The channel is direct where the engine runs on this host: the worker connects
to a unix socket the host listens on, bind-mounted read-only into the container
alone (its host directory is private to this user; the socket is unlinked once
the worker has connected, so the grader cannot open a second channel). Frames
then skip dockerd and containerd-shim, which otherwise copy every byte
(~7% of a big batch's CPU here). Where the engine cannot see the host's files
(a remote ``DOCKER_HOST``, Docker Desktop's VM, a client inside another
container) the worker exits with ``CONNECT_FAILED`` or the mount is refused, and
the backend falls back, once and for all its workers, to the container's attach
socket. ``RFTGRADE_DOCKER_CHANNEL=attach|socket`` forces either.

Containers are labelled with their owner and always removed: on kill, at close,
and, for owners that died without cleaning up, when the next backend starts on
this host.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import socket
import time
import uuid
from typing import Any

from rftgrade._exceptions import BackendUnavailableError
from rftgrade.sandbox._backend import SandboxBackend
from rftgrade.sandbox._channel import Channel, ChannelClosed, ProgressPage
from rftgrade.sandbox._docker_channels import PROGRESS_FILE, AttachChannel, SocketChannel
from rftgrade.sandbox._limits import Limits
from rftgrade.sandbox._seccomp import docker_seccomp_profile
from rftgrade.sandbox._tempdirs import owned_tempdir, pid_alive, reap_stale_tempdirs

__all__ = ["LABEL", "DockerBackend", "probe_channel", "reap_stale_containers"]

LABEL = "rftgrade.sandbox"
IMAGE = os.environ.get("RFTGRADE_SANDBOX_IMAGE", "rftgrade/sandbox:latest")
_HOST = socket.gethostname()
_CHANNEL = os.environ.get("RFTGRADE_DOCKER_CHANNEL", "auto")
_CHANNELS = ("auto", "socket", "attach")
_MOUNT = "/run/rftgrade"
_CONNECT_FAILED = 75  # sandbox/worker.py's exit code when --connect cannot reach the socket
_CONNECT_SECONDS = 60.0
log = logging.getLogger(__name__)


class _NoDirectChannel(Exception):
    """The container cannot reach a socket on this host: use the attach socket."""


def _client() -> Any:
    import docker

    return docker.from_env(max_pool_size=64, timeout=60)


def reap_stale_containers(client: Any | None = None, *, everything_of_mine: bool = False) -> int:
    """Remove sandbox containers whose owning process on this host is gone."""
    client = client or _client()
    removed = 0
    # The low-level list: its entries carry their labels, where the high-level one
    # inspects each container and fails (NotFound) on one its owner removed meanwhile.
    for entry in client.api.containers(all=True, filters={"label": LABEL}):
        owner = (entry.get("Labels") or {}).get(f"{LABEL}.owner", "")
        host, _, pid = owner.rpartition(":")
        mine = host == _HOST and pid.isdigit()
        if mine and ((everything_of_mine and int(pid) == os.getpid()) or not pid_alive(int(pid))):
            try:
                client.api.remove_container(entry["Id"], force=True)
                removed += 1
            except Exception:  # already gone
                pass
    return removed


class DockerBackend(SandboxBackend):
    name = "docker"
    isolated = True
    own_pid_namespace = True
    rlimit_nproc = False  # pids_limit bounds each container; uid 10001 is every container's

    def __init__(self, image: str = IMAGE) -> None:
        if _CHANNEL not in _CHANNELS:
            raise BackendUnavailableError(
                f"RFTGRADE_DOCKER_CHANNEL is {_CHANNEL!r}; set it to one of {', '.join(_CHANNELS)} "
                "(or unset it: auto)"
            )
        self.image = image
        self.client = _client()
        self.owner = f"{_HOST}:{os.getpid()}"
        # The engine must share this host's files for a bind-mounted socket to work.
        local = str(self.client.api.base_url).startswith("http+docker://localhost")
        self.direct = _CHANNEL == "socket" or (_CHANNEL != "attach" and local)
        self.why_attach: str | None = None  # why workers use the attach socket, once they do
        if _CHANNEL == "attach":
            self.why_attach = "RFTGRADE_DOCKER_CHANNEL=attach"
        elif not self.direct:
            self.why_attach = f"the engine is not on this host ({self.client.api.base_url})"
        reap_stale_containers(self.client)
        reap_stale_tempdirs("channel")

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

    def _run_container(self, limits: Limits, channel_dir: str | None = None) -> Any:
        from docker.types import LogConfig, Mount

        extra: dict[str, Any] = {"stdin_open": True, "command": ["--progress-file", PROGRESS_FILE]}
        if channel_dir is not None:
            extra = {
                "command": ["--connect", f"{_MOUNT}/s", "--progress"],
                "mounts": [Mount(_MOUNT, channel_dir, type="bind", read_only=True)],
            }
        return self.client.containers.run(
            self.image,
            detach=True,
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
            security_opt=["no-new-privileges", f"seccomp={docker_seccomp_profile()}"],
            user="10001:10001",
            # No init: the worker is the container's pid 1, so orphans are its to
            # reap and kill, and no dumpable init holds the attach stream a sample
            # could reopen through /proc/1/fd.
            environment={},
            ipc_mode="private",
            log_config=LogConfig(type="none"),
            **extra,
        )

    async def spawn(self, limits: Limits) -> Channel:
        if self.direct:
            try:
                return await self._spawn_direct(limits)
            except _NoDirectChannel as exc:
                if _CHANNEL == "socket":
                    raise ChannelClosed(f"RFTGRADE_DOCKER_CHANNEL=socket, but {exc}") from exc
                if self.direct:  # workers started together all find out: say it once
                    log.warning("docker sandbox: %s; workers use the attach socket instead", exc)
                self.direct = False
                self.why_attach = str(exc)
        return await self._spawn_attached(limits)

    async def _spawn_attached(self, limits: Limits) -> Channel:
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
        return AttachChannel(container, raw, sock)

    async def _spawn_direct(self, limits: Limits) -> Channel:
        import docker.errors

        # home is 0700: nobody else on this host can reach the socket. Only the
        # subdirectory is mounted, so inside the container its own mode counts.
        home = owned_tempdir("channel")
        try:
            shared = os.path.join(home, "c")
            os.mkdir(shared)
            os.chmod(shared, 0o711)
            listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            with listener:
                try:
                    listener.bind(os.path.join(shared, "s"))
                except OSError as exc:  # e.g. a TMPDIR too long for a socket path
                    raise _NoDirectChannel(f"cannot listen in {shared}: {exc}") from exc
                os.chmod(os.path.join(shared, "s"), 0o666)  # the container's uid differs from ours
                listener.listen(1)
                listener.setblocking(False)
                try:
                    container = await asyncio.to_thread(self._run_container, limits, shared)
                except docker.errors.APIError as exc:
                    # "bind source path does not exist" (dockerd); other engines word it their way.
                    if any(word in str(exc).lower() for word in ("bind", "mount")):
                        raise _NoDirectChannel(f"the engine cannot mount {shared}: {exc}") from exc
                    raise
                try:
                    conn = await self._accept(listener, container)
                except BaseException:
                    await asyncio.to_thread(container.remove, force=True)
                    raise
        finally:
            shutil.rmtree(home, ignore_errors=True)
        channel = SocketChannel(container, conn)
        # The worker's progress page goes first, as the socket's one control message.
        progress = ProgressPage()
        try:
            socket.send_fds(conn, [b"P"], [progress.fd])
        except OSError as exc:
            progress.close()
            await channel.kill()
            raise ChannelClosed(f"could not hand the worker its progress page: {exc}") from exc
        progress.hand_over()
        channel.progress = progress
        return channel

    async def _accept(self, listener: socket.socket, container: Any) -> socket.socket:
        """The worker's connection; :class:`_NoDirectChannel` if it says it cannot connect."""
        loop = asyncio.get_running_loop()
        deadline = time.monotonic() + _CONNECT_SECONDS
        while time.monotonic() < deadline:
            try:
                conn, _ = await asyncio.wait_for(loop.sock_accept(listener), 0.5)
                return conn
            except TimeoutError:
                await asyncio.to_thread(container.reload)
                if container.status in ("exited", "dead"):
                    code = container.attrs.get("State", {}).get("ExitCode")
                    if code == _CONNECT_FAILED:
                        raise _NoDirectChannel("the container cannot reach a socket on this host") from None
                    raise ChannelClosed(f"the worker exited before connecting (exit code {code})") from None
        raise _NoDirectChannel(f"no worker connected within {_CONNECT_SECONDS:.0f} s")

    async def aclose(self) -> None:
        await asyncio.to_thread(reap_stale_containers, self.client, everything_of_mine=True)


def probe_channel(backend: DockerBackend | None = None) -> str:
    """Start one worker and say how the host talks to it (``rftgrade sandbox doctor``)."""
    backend = backend or DockerBackend()

    async def probe() -> str:
        try:
            channel = await backend.spawn(Limits(timeout=10.0))
            await channel.kill()
        finally:
            await backend.aclose()
        if isinstance(channel, SocketChannel):
            return "unix socket bind-mounted into each container"
        return f"the engine's attach socket (slower: {backend.why_attach})"

    return asyncio.run(probe())
