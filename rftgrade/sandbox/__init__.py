"""Sandboxed execution of ``python`` graders: backends, warm pools, the executor.

Backends: ``docker`` (containers through the docker SDK), ``bwrap`` (bubblewrap
namespaces) and ``process`` (rlimits only, NOT isolated). See ``docs/sandbox.md``
for what each isolates.
"""

from __future__ import annotations

from rftgrade.sandbox._backend import SandboxBackend
from rftgrade.sandbox._executor import ISOLATION_LEVELS, SandboxExecutor
from rftgrade.sandbox._limits import DEFAULT_LIMITS, Limits
from rftgrade.sandbox._select import BACKENDS, make_backend

__all__ = [
    "BACKENDS",
    "DEFAULT_LIMITS",
    "ISOLATION_LEVELS",
    "Limits",
    "SandboxBackend",
    "SandboxExecutor",
    "make_backend",
]
