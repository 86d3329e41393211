"""The interface every sandbox backend implements, and the conformance it promises."""

from __future__ import annotations

import abc
from pathlib import Path

from rftgrade.sandbox._channel import Channel
from rftgrade.sandbox._limits import Limits

__all__ = ["WORKER_SOURCE", "SandboxBackend"]

WORKER_SOURCE = Path(__file__).resolve().parent.parent.parent / "sandbox" / "worker.py"
"""The stdlib-only worker. It lives in the repository's ``sandbox/`` (beside the image
definition), so sandboxes run from a source checkout (``pip install -e .``)."""


class SandboxBackend(abc.ABC):
    """Starts workers. A backend never grades: the pool drives the workers it starts."""

    name: str = "?"
    isolated: bool = True
    own_pid_namespace: bool = True
    """True when the worker may ``kill(-1)`` to clean up: it sees only its own sandbox."""

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
