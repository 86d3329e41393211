"""The interface every sandbox backend implements, and the conformance it promises."""

from __future__ import annotations

import abc
from pathlib import Path

from rftgrade.sandbox._channel import Channel
from rftgrade.sandbox._limits import Limits

__all__ = ["SANDBOX_FILES", "WORKER_FILES", "WORKER_SOURCE", "SandboxBackend"]

SANDBOX_FILES = Path(__file__).resolve().parent / "_files"
"""The repository's ``sandbox/`` (the image definition and the worker), linked into
the package so that it ships in the wheel; in a checkout it is the directory itself."""

WORKER_SOURCE = SANDBOX_FILES / "worker.py"
"""The stdlib-only worker, run inside every sandbox."""

WORKER_FILES = ("worker.py", "_rftgrade_wire.py", "_rftgrade_values.py", "_rftgrade_os.py")
"""The worker and the modules it imports from its own directory: every backend
puts all of them, side by side, where the sandbox runs ``worker.py``."""


class SandboxBackend(abc.ABC):
    """Starts workers. A backend never grades: the pool drives the workers it starts."""

    name: str = "?"
    isolated: bool = True
    own_pid_namespace: bool = True
    """True when the worker may ``kill(-1)`` to clean up: it sees only its own sandbox."""
    rlimit_nproc: bool = True
    """Whether the worker sets ``RLIMIT_NPROC``. It counts every process of the uid on
    the host, so where a cgroup bounds processes per sandbox (docker's ``pids_limit``)
    it would only let one sandbox's processes starve another's of the same uid."""

    @classmethod
    @abc.abstractmethod
    def unavailable_reason(cls) -> str | None:
        """``None`` if this backend can run here, else why not and how to fix it."""

    @abc.abstractmethod
    async def spawn(self, limits: Limits) -> Channel:
        """Start one worker (not yet loaded with a grader)."""

    async def aclose(self) -> None:
        """Remove anything the backend created (containers, temp dirs)."""
        return None
