"""What a backend leaves on the host named after its process (temporary
directories here; the docker backend's containers carry it as a label), so that
the next backend on this host removes what processes that died left behind."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

__all__ = ["owned_tempdir", "pid_alive", "reap_stale_tempdirs"]


def owned_tempdir(kind: str) -> str:
    """A new private (0700) directory, ``rftgrade-KIND-PID-XXXXXXXX`` in the temp dir."""
    return tempfile.mkdtemp(prefix=f"rftgrade-{kind}-{os.getpid()}-")


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists on this host (someone else's counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def reap_stale_tempdirs(kind: str) -> int:
    """Remove ``kind`` directories whose owning process is gone; how many went."""
    removed = 0
    for path in Path(tempfile.gettempdir()).glob(f"rftgrade-{kind}-*-*"):
        pid = path.name.split("-")[2]
        if pid.isdigit() and not pid_alive(int(pid)) and path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
            removed += not path.exists()
    return removed
