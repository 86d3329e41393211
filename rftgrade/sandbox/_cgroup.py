"""A cgroup per bwrap worker, where this host lets rftgrade make one.

bwrap gets no cgroup of its own: without one, a worker's memory is bounded per
process (``RLIMIT_AS``) times its process limit. Where rftgrade can create child
cgroups (root on a host with the cgroup v1 ``memory`` and ``pids`` hierarchies
mounted writable, as in most containers that run Docker), each worker gets one of
each: ``memory.limit_in_bytes`` (and the memory+swap limit) bounds the worker and
every process it starts *together*, tmpfs pages included, as Docker's
``mem_limit`` does, and ``pids.max`` bounds its processes. The worker enters them
itself before ``bwrap`` starts (a shell that writes its pid, then ``exec``), so no
process of the sandbox is ever outside them. Elsewhere (no such hierarchy, not
root, cgroup v2 only) nothing is done and docs/sandbox.md says what holds.
"""

from __future__ import annotations

import contextlib
import itertools
import os
from pathlib import Path

__all__ = ["WorkerCgroup", "available"]

_ROOT = Path("/sys/fs/cgroup")
_ids = itertools.count()
_usable: bool | None = None


def _own(controller: str) -> Path | None:
    """This process's cgroup directory in the v1 hierarchy of ``controller``."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if controller in controllers.split(","):
            directory = _ROOT / controller / path.lstrip("/")
            return directory if (directory / "cgroup.procs").exists() else None
    return None


def available() -> bool:
    """Whether workers get cgroups here (probed once: a child cgroup made and removed)."""
    global _usable
    if _usable is None:
        _usable = False
        if os.geteuid() == 0 and os.environ.get("RFTGRADE_BWRAP_CGROUP", "1") != "0":
            probe = WorkerCgroup.create(memory_bytes=64 * 1024**2, pids=8)
            if probe is not None:
                probe.remove()
                _usable = True
                _reap_stale()
    return _usable


def _reap_stale() -> None:
    """Remove the (empty) cgroups of rftgrade processes that are gone: one that died
    without closing its workers leaves them behind."""
    from rftgrade.sandbox._tempdirs import pid_alive

    for controller in ("memory", "pids"):
        parent = _own(controller)
        for directory in parent.glob("rftgrade-*-*") if parent is not None else ():
            pid = directory.name.split("-")[1]
            if pid.isdigit() and not pid_alive(int(pid)):
                with contextlib.suppress(OSError):
                    directory.rmdir()


class WorkerCgroup:
    """A ``memory`` and a ``pids`` cgroup for one worker."""

    def __init__(self, directories: list[Path]) -> None:
        self.directories = directories

    @classmethod
    def create(cls, memory_bytes: int, pids: int, uid: int | None = None) -> WorkerCgroup | None:
        """Both cgroups with their limits (``cgroup.procs`` writable by ``uid``, which
        enters them), or ``None`` where they cannot be had."""
        made: list[Path] = []
        try:
            for controller in ("memory", "pids"):
                parent = _own(controller)
                if parent is None:
                    raise OSError(f"no cgroup v1 {controller} hierarchy")
                directory = parent / f"rftgrade-{os.getpid()}-{next(_ids)}"
                directory.mkdir()
                made.append(directory)
                if controller == "memory":
                    (directory / "memory.limit_in_bytes").write_text(str(memory_bytes))
                    swap = directory / "memory.memsw.limit_in_bytes"
                    if swap.exists():  # no swap beyond the limit either
                        swap.write_text(str(memory_bytes))
                else:
                    (directory / "pids.max").write_text(str(pids))
                if uid is not None:
                    os.chown(directory / "cgroup.procs", uid, -1)
        except OSError:
            WorkerCgroup(made).remove()
            return None
        return cls(made)

    def enter_command(self) -> list[str]:
        """argv prefix that moves the starting process into the cgroups, then execs the rest."""
        script = "".join(f'echo $$ > "{d}/cgroup.procs" && ' for d in self.directories) + 'exec "$@"'
        return ["/bin/sh", "-c", script, "sh"]

    def oom_killed(self) -> bool:
        """Whether the kernel killed a process of this worker for the memory limit."""
        for directory in self.directories:
            with contextlib.suppress(OSError):
                for line in (directory / "memory.oom_control").read_text().splitlines():
                    if line.startswith("oom_kill ") and int(line.split()[1]) > 0:
                        return True
        return False

    def remove(self) -> None:
        """Remove the cgroups (the caller has killed and reaped the worker)."""
        left = []
        for directory in self.directories:
            try:
                directory.rmdir()
            except FileNotFoundError:
                pass
            except OSError:  # still busy: the caller may try again
                left.append(directory)
        self.directories = left
