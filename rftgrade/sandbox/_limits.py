"""Sandbox limits; the defaults are OpenAI's python-grader limits."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["DEFAULT_LIMITS", "Limits"]


@dataclass(frozen=True)
class Limits:
    """Resource limits for one sandboxed worker (all configurable)."""

    timeout: float = 120.0
    """Seconds one ``grade`` call may run (OpenAI: 2 minutes)."""
    memory_bytes: int = 2 * 1024**3
    """Address space of a worker (OpenAI: 2 GB)."""
    disk_bytes: int = 1024**3
    """Size of the sandbox's writable /tmp (OpenAI: 1 GB)."""
    cpus: float = 2.0
    """CPU quota of a worker (OpenAI: 2 cores; Docker only, bwrap uses RLIMIT_CPU-free wall deadlines)."""
    pids: int = 64
    """Processes and threads per worker (fork bombs stop here)."""
    nofile: int = 256
    max_source_bytes: int = 256 * 1024

    def for_worker(self) -> dict[str, Any]:
        """The subset the worker applies to itself as rlimits."""
        return {
            "timeout": self.timeout,
            "memory_bytes": self.memory_bytes,
            "file_bytes": self.disk_bytes,
            "nproc": self.pids,
            "nofile": self.nofile,
        }

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_env(cls) -> Limits:
        """Defaults, overridden by ``RFTGRADE_SANDBOX_TIMEOUT`` / ``_MEMORY_MB`` / ``_PIDS``."""
        kwargs: dict[str, Any] = {}
        if os.environ.get("RFTGRADE_SANDBOX_TIMEOUT"):
            kwargs["timeout"] = float(os.environ["RFTGRADE_SANDBOX_TIMEOUT"])
        if os.environ.get("RFTGRADE_SANDBOX_MEMORY_MB"):
            kwargs["memory_bytes"] = int(os.environ["RFTGRADE_SANDBOX_MEMORY_MB"]) * 1024**2
        if os.environ.get("RFTGRADE_SANDBOX_PIDS"):
            kwargs["pids"] = int(os.environ["RFTGRADE_SANDBOX_PIDS"])
        return cls(**kwargs)


DEFAULT_LIMITS = Limits()
