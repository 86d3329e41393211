"""The sandbox worker's process hygiene: limits, forked replies, leftovers.

Stdlib only (it runs inside the sandbox, beside ``worker.py``): rlimits, the
check of a forked sample's reply, and cleaning what a sample leaves behind
(processes, files in ``/tmp``).
"""

from __future__ import annotations

import json
import math
import os
import resource
from typing import Any

from _rftgrade_wire import MAX_DETAILS, MAX_STDOUT, gc_paused


def checked_child_reply(frame: bytes, elapsed: int) -> dict[str, Any]:
    """A forked sample's reply, rebuilt from checked fields: the child ran the
    sample's code and may have written anything into its pipe."""
    try:
        with gc_paused():
            answer = json.loads(frame)
    except (ValueError, RecursionError):
        answer = None
    if type(answer) is not dict:
        return {
            "error": "runtime",
            "error_type": "InvalidReply",
            "details": "the grading process sent no valid reply",
            "duration_ns": elapsed,
        }
    duration = answer.get("duration_ns")
    # The child's own timing of grade(), unless it is not one: then fork to reply.
    result: dict[str, Any] = {
        "duration_ns": duration if type(duration) is int and 0 <= duration <= elapsed else elapsed
    }
    reward = answer.get("reward")
    error = answer.get("error")
    if error in ("runtime", "timeout"):
        result["error"] = error
        result["error_type"] = str(answer.get("error_type") or "Error")[:200]
        result["details"] = str(answer.get("details") or "")[-MAX_DETAILS:]
    elif type(reward) is float and math.isfinite(reward):
        result["reward"] = reward
    else:
        result.update(
            error="runtime", error_type="InvalidReply", details="the grading process sent no reward"
        )
    stdout = answer.get("stdout")
    if type(stdout) is str and stdout:
        result["stdout"] = stdout[: MAX_STDOUT + 100]
    return result


# What _call writes, JSON-escaped: up to 12 bytes a character (an astral one).
MAX_CHILD_REPLY = 4 + 12 * (MAX_STDOUT + MAX_DETAILS) + 4096


TMP = "/tmp"


def tmp_entries() -> set[str]:
    try:
        return set(os.listdir(TMP))
    except OSError:
        return set()


def clean_tmp(keep: set[str]) -> None:
    """Remove what a forked sample left in /tmp (also $HOME): a planted
    ``usercustomize.py``, ``.pth`` or ``.local`` would change every later python the
    grader starts. Only in a sandbox of its own (``own_pid_namespace``): there /tmp
    is the sandbox's tmpfs, never the host's."""
    try:
        entries = os.listdir(TMP)
    except OSError:
        return
    if len(entries) == len(keep) and keep.issuperset(entries):
        return  # the common case: one listdir per sample
    import shutil

    for name in entries:
        if name in keep:
            continue
        path = os.path.join(TMP, name)
        try:
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path, ignore_errors=True)
            else:
                os.unlink(path)
        except OSError:
            pass


def has_children() -> bool:
    """Whether any process is this one's child (or an orphan it adopted as its
    sandbox's init); one syscall."""
    try:
        os.waitpid(-1, os.WNOHANG)
    except ChildProcessError:
        return False
    return True


def apply_limits(limits: dict[str, Any]) -> None:
    def setlimit(kind: int, value: int) -> None:
        try:
            _soft, hard = resource.getrlimit(kind)
            new = value if hard == resource.RLIM_INFINITY else min(value, hard)
            resource.setrlimit(kind, (new, new))
        except (ValueError, OSError):
            pass

    if limits.get("memory_bytes"):
        setlimit(resource.RLIMIT_AS, int(limits["memory_bytes"]))
    if limits.get("file_bytes"):
        setlimit(resource.RLIMIT_FSIZE, int(limits["file_bytes"]))
    if limits.get("nproc"):
        setlimit(resource.RLIMIT_NPROC, int(limits["nproc"]))
    if limits.get("nofile"):
        setlimit(resource.RLIMIT_NOFILE, int(limits["nofile"]))
    setlimit(resource.RLIMIT_CORE, 0)
