"""Choosing a backend by name: explicit, from ``$RFTGRADE_SANDBOX``, or ``auto``."""

from __future__ import annotations

import os

from rftgrade._exceptions import BackendUnavailableError
from rftgrade.sandbox._backend import WORKER_FILES, WORKER_SOURCE, SandboxBackend

__all__ = ["BACKENDS", "backend_class", "make_backend"]

BACKENDS = ("docker", "bwrap", "process")


def backend_class(name: str) -> type[SandboxBackend]:
    if name == "docker":
        from rftgrade.sandbox.docker import DockerBackend

        return DockerBackend
    if name == "bwrap":
        from rftgrade.sandbox.bwrap import BwrapBackend

        return BwrapBackend
    if name == "process":
        from rftgrade.sandbox.process import ProcessBackend

        return ProcessBackend
    raise BackendUnavailableError(f"unknown sandbox {name!r}; choose one of: {', '.join(BACKENDS)}")


def make_backend(name: str = "auto") -> SandboxBackend:
    """Build a backend. ``auto``: docker if an engine answers and the image exists, else bwrap.

    ``process`` (not isolated) is never chosen by ``auto``.

    Raises:
        BackendUnavailableError: the named backend cannot run here (with the reason).
    """
    missing = [name for name in WORKER_FILES if not (WORKER_SOURCE.parent / name).is_file()]
    if missing:
        raise BackendUnavailableError(
            f"the sandbox worker is incomplete ({', '.join(missing)} missing in {WORKER_SOURCE.parent}); "
            "reinstall rftgrade (the wheel ships it), or in a checkout restore sandbox/"
        )
    if name == "auto":
        name = os.environ.get("RFTGRADE_SANDBOX", "auto")
    if name == "auto":
        reasons = []
        for candidate in ("docker", "bwrap"):
            why = backend_class(candidate).unavailable_reason()
            if why is None:
                return backend_class(candidate)()
            reasons.append(f"{candidate}: {why}")
        raise BackendUnavailableError(
            "no isolating sandbox is available (" + "; ".join(reasons) + "). "
            "Install one, or pass --sandbox process to run python graders WITHOUT isolation."
        )
    cls = backend_class(name)
    why = cls.unavailable_reason()
    if why is not None:
        raise BackendUnavailableError(f"the {name} sandbox is unavailable: {why}")
    return cls()
