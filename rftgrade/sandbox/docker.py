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

Containers are created, inspected and removed through :mod:`._engine`: over this
host's engine socket with the standard library (the docker SDK's import alone was
a third of a container's start), through the SDK for any other engine. The SDK
still drives the attach channel and image builds.

Containers are labelled with their owner and always removed: on kill, at close,
and, for owners that died without cleaning up, when the next backend starts on
this host.
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import os
import shutil
import socket
import time
import uuid
from collections.abc import Callable
from typing import Any

from rftgrade._exceptions import BackendUnavailableError
from rftgrade.sandbox._backend import SandboxBackend
from rftgrade.sandbox._channel import Channel, ChannelClosed, ProgressPage
from rftgrade.sandbox._docker_channels import PROGRESS_FILE, AttachChannel, SocketChannel
from rftgrade.sandbox._engine import ContainerRef, Engine, EngineError, LocalEngine, SdkEngine, local_socket
from rftgrade.sandbox._limits import Limits
from rftgrade.sandbox._seccomp import docker_seccomp_profile
from rftgrade.sandbox._tempdirs import owned_tempdir, pid_alive, reap_stale_tempdirs

__all__ = [
    "LABEL",
    "DockerBackend",
    "container_config",
    "probe_channel",
    "reap_stale_containers",
    "run_container",
]

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


class _Started:
    """A worker's container, started with a socket to connect to, not yet connected."""

    def __init__(self, home: str, listener: socket.socket, container: ContainerRef) -> None:
        self.home = home
        self.listener = listener
        self.container = container

    def close_listener(self) -> None:
        """Stop listening and remove the socket's directory (the worker connected, or never will)."""
        self.listener.close()
        shutil.rmtree(self.home, ignore_errors=True)


def _listen_and_run(run: Callable[[str], ContainerRef]) -> _Started:
    """Listen on a fresh private socket and ``run(directory)`` a container that will connect to it.

    Raises:
        _NoDirectChannel: the socket cannot be made, or the engine cannot mount it.
    """
    # home is 0700: nobody else on this host can reach the socket. Only the
    # subdirectory is mounted, so inside the container its own mode counts.
    home = owned_tempdir("channel")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        shared = os.path.join(home, "c")
        os.mkdir(shared)
        os.chmod(shared, 0o711)
        try:
            listener.bind(os.path.join(shared, "s"))
        except OSError as exc:  # e.g. a TMPDIR too long for a socket path
            raise _NoDirectChannel(f"cannot listen in {shared}: {exc}") from exc
        os.chmod(os.path.join(shared, "s"), 0o666)  # the container's uid differs from ours
        listener.listen(1)
        listener.setblocking(False)
        try:
            container = run(shared)
        except EngineError as exc:
            # "bind source path does not exist" (dockerd); other engines word it their way.
            if any(word in str(exc).lower() for word in ("bind", "mount")):
                raise _NoDirectChannel(f"the engine cannot mount {shared}: {exc}") from exc
            raise
    except BaseException:
        listener.close()
        shutil.rmtree(home, ignore_errors=True)
        raise
    return _Started(home, listener, container)


def _client() -> Any:
    import docker

    return docker.from_env(max_pool_size=64, timeout=60)


def _engine() -> Engine:
    """This host's engine over its unix socket, else whatever the SDK reaches (:mod:`._engine`)."""
    path = local_socket()
    return LocalEngine(path) if path is not None else SdkEngine(_client().api)


def reap_stale_containers(engine: Engine | None = None, *, everything_of_mine: bool = False) -> int:
    """Remove sandbox containers whose owning process on this host is gone."""
    engine = engine or _engine()
    removed = 0
    # The list's entries carry their labels: no inspection of each, which would fail
    # on one its owner removed meanwhile.
    for entry in engine.containers(LABEL):
        owner = (entry.get("Labels") or {}).get(f"{LABEL}.owner", "")
        host, _, pid = owner.rpartition(":")
        mine = host == _HOST and pid.isdigit()
        if mine and ((everything_of_mine and int(pid) == os.getpid()) or not pid_alive(int(pid))):
            try:
                engine.remove(entry["Id"])
                removed += 1
            except EngineError:  # already gone
                pass
    return removed


def container_config(
    image: str, owner: str, limits: Limits, channel_dir: str | None = None
) -> dict[str, Any]:
    """The Engine API's create body of one hardened worker container (see the module's text).

    With ``channel_dir`` the worker connects to the socket in it (mounted read-only);
    without, it talks over its attach stream (stdin kept open).
    """
    host: dict[str, Any] = {
        "NetworkMode": "none",
        "ReadonlyRootfs": True,
        "Tmpfs": {"/tmp": f"rw,nosuid,nodev,size={limits.disk_bytes}"},
        "Memory": limits.memory_bytes,
        "MemorySwap": limits.memory_bytes,  # = memory: no swap on top
        "NanoCpus": int(limits.cpus * 1e9),
        "PidsLimit": limits.pids,
        "CapDrop": ["ALL"],
        "SecurityOpt": ["no-new-privileges", f"seccomp={docker_seccomp_profile()}"],
        "IpcMode": "private",
        "LogConfig": {"Type": "none", "Config": {}},
    }
    config: dict[str, Any] = {
        "Image": image,
        "Labels": {LABEL: "1", f"{LABEL}.owner": owner},
        "User": "10001:10001",
        # No init: the worker is the container's pid 1, so orphans are its to reap
        # and kill, and no dumpable init holds the attach stream a sample could
        # reopen through /proc/1/fd.
        "Env": [],
        "Tty": False,
        "HostConfig": host,
    }
    if channel_dir is None:
        config.update(Cmd=["--progress-file", PROGRESS_FILE], OpenStdin=True, StdinOnce=False)
    else:
        config["Cmd"] = ["--connect", f"{_MOUNT}/s", "--progress"]
        host["Mounts"] = [{"Target": _MOUNT, "Source": channel_dir, "Type": "bind", "ReadOnly": True}]
    return config


def run_container(
    engine: Engine, image: str, owner: str, limits: Limits, channel_dir: str | None = None
) -> ContainerRef:
    """Create and start one worker's container (removed again if it cannot start)."""
    config = container_config(image, owner, limits, channel_dir)
    container = ContainerRef(engine, engine.create(config, f"rftgrade-{uuid.uuid4().hex[:12]}"))
    try:
        engine.start(container.id)
    except BaseException:
        try:
            container.remove()
        except EngineError:
            pass
        raise
    return container


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
        self.engine = _engine()
        self._client: Any = None
        self.owner = f"{_HOST}:{os.getpid()}"
        # The engine must share this host's files for a bind-mounted socket to work.
        local = isinstance(self.engine, LocalEngine)
        self.direct = _CHANNEL == "socket" or (_CHANNEL != "attach" and local)
        self.why_attach: str | None = None  # why workers use the attach socket, once they do
        if _CHANNEL == "attach":
            self.why_attach = "RFTGRADE_DOCKER_CHANNEL=attach"
        elif not self.direct:
            self.why_attach = f"the engine is not on this host ({self.client.api.base_url})"
        reap_stale_containers(self.engine)
        reap_stale_tempdirs("channel")

    @property
    def client(self) -> Any:
        """The docker SDK's client: for the attach channel alone (the rest is :attr:`engine`)."""
        if self._client is None:
            self._client = _client()
        return self._client

    @classmethod
    def unavailable_reason(cls) -> str | None:
        # Found, not imported: the SDK is for the attach channel and image builds alone.
        if importlib.util.find_spec("docker") is None:
            return "the docker SDK is not installed (pip install 'rftgrade[sandbox]')"
        path = local_socket()
        try:
            if path is not None:
                engine = LocalEngine(path, timeout=10)
                engine.ping()
                has_image = engine.has_image(IMAGE)
            else:
                import docker.errors

                client = _client()
                client.ping()
                try:
                    client.images.get(IMAGE)
                    has_image = True
                except docker.errors.ImageNotFound:
                    has_image = False
        except Exception as exc:
            return f"no Docker engine answers ({type(exc).__name__}); start dockerd or use --sandbox bwrap"
        if not has_image:
            return f"the sandbox image {IMAGE} is missing; build it with `rftgrade sandbox build --backend docker`"
        return None

    def _run_container(self, limits: Limits, channel_dir: str | None = None) -> ContainerRef:
        return run_container(self.engine, self.image, self.owner, limits, channel_dir)

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
            await asyncio.to_thread(container.remove)
            raise
        raw = getattr(sock, "_sock", sock)
        return AttachChannel(container, raw, sock, self.client.containers.prepare_model({"Id": container.id}))

    def _start_direct(self, limits: Limits) -> _Started:
        return _listen_and_run(lambda shared: self._run_container(limits, shared))

    async def _spawn_direct(self, limits: Limits) -> Channel:
        started = await asyncio.to_thread(self._start_direct, limits)
        container = started.container
        try:
            try:
                conn = await self._accept(started.listener, container)
            except BaseException:
                await asyncio.to_thread(container.remove)
                raise
        finally:
            started.close_listener()
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

    async def _accept(self, listener: socket.socket, container: ContainerRef) -> socket.socket:
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
        await asyncio.to_thread(reap_stale_containers, self.engine, everything_of_mine=True)


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
