"""``bwrap`` backend: one bubblewrap namespace per worker, as an unprivileged uid.

Isolation: new user, pid, net, ipc, uts and mount namespaces (no network at all,
not even loopback to the host); a read-only view of ``/usr`` and the grader
environment only, never the host root, home or repository; a sized tmpfs
``/tmp``; ``--as-pid-1`` (the worker is the namespace's init, so a grader cannot
kill it with ``kill(1)``/``kill(-1)``); ``--die-with-parent``; a cleared
environment; all capabilities dropped; a seccomp filter (see ``_seccomp``); and
rlimits (address space, processes, files, open files). Runs as uid 65534 when
the host runs as root, because as root ``RLIMIT_NPROC`` is not enforced and a
fork bomb runs free.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import stat
import subprocess
from pathlib import Path
from typing import Any

from rftgrade.sandbox import _cgroup
from rftgrade.sandbox._backend import WORKER_FILES, WORKER_SOURCE, SandboxBackend
from rftgrade.sandbox._cgroup import WorkerCgroup
from rftgrade.sandbox._channel import Channel, PipeChannel, ProgressPage
from rftgrade.sandbox._limits import Limits
from rftgrade.sandbox._tempdirs import owned_tempdir, reap_stale_tempdirs

__all__ = ["BwrapBackend", "DEFAULT_VENV", "SANDBOX_UID"]

SANDBOX_UID = 65534
DEFAULT_VENV = Path(os.environ.get("RFTGRADE_SANDBOX_VENV", "/var/lib/rftgrade/sandbox-venv"))
SYSTEM_PYTHON = "/usr/bin/python3"
SHM_BYTES = 16 * 1024 * 1024


_BASE_MOUNTS = (
    # Only the runtime: /usr read-only (with the usual root symlinks), a fresh /proc and /dev.
    "--ro-bind", "/usr", "/usr",
    "--symlink", "usr/lib", "/lib", "--symlink", "usr/lib64", "/lib64",
    "--symlink", "usr/bin", "/bin", "--symlink", "usr/sbin", "/sbin",
    "--proc", "/proc", "--dev", "/dev",
)  # fmt: skip


def _as_sandbox_user() -> dict[str, Any]:
    """subprocess arguments that drop to the sandbox uid when we run as root."""
    if os.geteuid() != 0:
        return {}
    return {"user": SANDBOX_UID, "group": SANDBOX_UID, "extra_groups": []}


class BwrapBackend(SandboxBackend):
    name = "bwrap"
    isolated = True
    own_pid_namespace = True

    def __init__(self, venv: Path | None = None, nltk_data: Path | None = None) -> None:
        self.venv = venv if venv is not None else DEFAULT_VENV
        self.nltk_data = nltk_data if nltk_data is not None else self.venv / "nltk_data"
        # The worker must be readable by the sandbox uid, wherever rftgrade lives.
        reap_stale_tempdirs("worker")
        self._dir = Path(owned_tempdir("worker"))
        for name in WORKER_FILES:
            shutil.copyfile(WORKER_SOURCE.parent / name, self._dir / name)
            os.chmod(self._dir / name, stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
        os.chmod(self._dir, 0o755)

    @classmethod
    def unavailable_reason(cls) -> str | None:
        if shutil.which("bwrap") is None:
            return "bubblewrap is not installed (apt-get install bubblewrap)"
        if not Path(SYSTEM_PYTHON).exists():
            return f"{SYSTEM_PYTHON} is missing (apt-get install python3)"
        try:
            import pyseccomp  # noqa: F401
        except ImportError:
            return "pyseccomp is not installed (pip install 'rftgrade[sandbox]')"
        probe = ["bwrap", "--unshare-all", "--die-with-parent", *_BASE_MOUNTS, "--", "/usr/bin/true"]
        kwargs = _as_sandbox_user()
        try:
            done: subprocess.CompletedProcess[bytes] = subprocess.run(
                probe, capture_output=True, timeout=20, **kwargs
            )  # type: ignore[call-overload]
        except (OSError, subprocess.SubprocessError) as exc:
            return f"bwrap could not start: {exc}"
        if done.returncode != 0:
            return (
                "bwrap cannot create namespaces here (unprivileged user namespaces disabled?): "
                + done.stderr.decode(errors="replace").strip()[:300]
            )
        return None

    def argv(self, limits: Limits, seccomp_fd: int) -> list[str]:
        python = SYSTEM_PYTHON
        args = [
            "bwrap",
            "--unshare-all",
            "--die-with-parent",
            "--new-session",
            "--as-pid-1",
            "--clearenv",
            "--setenv",
            "PATH",
            "/usr/bin:/bin",
            "--setenv",
            "LANG",
            "C.UTF-8",
            "--setenv",
            "HOME",
            "/tmp",
            "--setenv",
            "PYTHONDONTWRITEBYTECODE",
            "1",
            "--setenv",
            "OMP_NUM_THREADS",
            "1",
            "--setenv",
            "OPENBLAS_NUM_THREADS",
            "1",
            "--setenv",
            "MKL_NUM_THREADS",
            "1",
            *_BASE_MOUNTS,
            "--ro-bind",
            str(self._dir),
            "/opt/rftgrade",
            "--size",
            str(limits.disk_bytes),
            "--tmpfs",
            "/tmp",
            # /dev/shm is part of --dev's unsized tmpfs: give it a small one of its own
            # (POSIX semaphores and multiprocessing need a little).
            "--size",
            str(SHM_BYTES),
            "--tmpfs",
            "/dev/shm",
            "--chdir",
            "/tmp",
            "--cap-drop",
            "ALL",
            "--seccomp",
            str(seccomp_fd),
        ]
        if (self.venv / "bin" / "python").exists():
            args += ["--ro-bind", str(self.venv), "/opt/grader"]
            python = "/opt/grader/bin/python"
        if self.nltk_data.is_dir():
            args += [
                "--ro-bind",
                str(self.nltk_data),
                "/opt/nltk_data",
                "--setenv",
                "NLTK_DATA",
                "/opt/nltk_data",
            ]
        # Last, once every mount is made: the root tmpfs (and /dev's) read-only, so
        # the only writable places are the sized /tmp and /dev/shm.
        args += ["--remount-ro", "/", "--remount-ro", "/dev"]
        return [*args, "--", python, "-I", "-u", "/opt/rftgrade/worker.py"]

    async def spawn(self, limits: Limits) -> Channel:
        from rftgrade.sandbox._seccomp import seccomp_bpf_fd

        fd = seccomp_bpf_fd()
        info_r, info_w = os.pipe()
        progress = ProgressPage()
        cgroup = None
        if _cgroup.available():
            cgroup = WorkerCgroup.create(limits.memory_bytes, limits.pids, uid=SANDBOX_UID)
        try:
            kwargs = _as_sandbox_user()
            argv = [*self.argv(limits, fd), "--progress-fd", str(progress.fd)]
            argv[1:1] = ["--info-fd", str(info_w)]
            if cgroup is not None:
                argv = [*cgroup.enter_command(), *argv]
            proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.DEVNULL,
                pass_fds=(fd, info_w, progress.fd),
                env={"PATH": "/usr/bin:/bin"},
                start_new_session=True,
                **kwargs,
            )
        except BaseException:
            progress.close()
            if cgroup is not None:
                cgroup.remove()
            raise
        finally:
            os.close(fd)
            os.close(info_w)
        progress.hand_over()
        return _BwrapChannel(proc, info_r, progress, cgroup)

    async def aclose(self) -> None:
        shutil.rmtree(self._dir, ignore_errors=True)


class _BwrapChannel(PipeChannel):
    """Kills the sandbox's init first, so bwrap reaps it and exits cleanly (no zombies)."""

    def __init__(
        self,
        proc: asyncio.subprocess.Process,
        info_fd: int,
        progress: ProgressPage,
        cgroup: WorkerCgroup | None = None,
    ) -> None:
        super().__init__(proc, progress)
        self.cgroup = cgroup
        self._info_fd = info_fd
        self._child: int | None = None

    def _child_pid(self) -> int | None:
        if self._child is None and self._info_fd >= 0:
            os.set_blocking(self._info_fd, False)
            try:
                data = os.read(self._info_fd, 4096)
                self._child = int(json.loads(data)["child-pid"])
            except (OSError, ValueError, KeyError):
                pass
            finally:
                os.close(self._info_fd)
                self._info_fd = -1
        return self._child

    async def kill(self) -> None:
        child = self._child_pid()
        if child is not None and self.proc.returncode is None:
            try:
                os.kill(child, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            try:
                await asyncio.wait_for(self.proc.wait(), 5)
            except TimeoutError:
                pass
        await super().kill()
        if self.cgroup is not None:
            for _ in range(50):  # the kernel empties a cgroup once its last process is reaped
                self.cgroup.remove()
                if not self.cgroup.directories:
                    break
                await asyncio.sleep(0.05)

    def describe_exit(self) -> str:
        how = super().describe_exit()
        if self.cgroup is not None and self.cgroup.oom_killed():
            how += ", OOM-killed (the worker's memory cgroup)"
        return how
