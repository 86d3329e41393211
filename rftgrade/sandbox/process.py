"""``process`` backend: a plain subprocess with rlimits. NOT isolated.

For quick local authoring on machines with neither Docker nor bubblewrap: the
grader can read your files, use the network and see your environment. Every
result it produces says so (``metadata.scores.sandbox``), and it is never chosen
unless asked for by name.
"""

from __future__ import annotations

import asyncio
import os
import sys

from rftgrade.sandbox._backend import WORKER_SOURCE, SandboxBackend
from rftgrade.sandbox._channel import Channel, PipeChannel, ProgressPage
from rftgrade.sandbox._limits import Limits

__all__ = ["ProcessBackend"]


class ProcessBackend(SandboxBackend):
    name = "process"
    isolated = False
    own_pid_namespace = False

    @classmethod
    def unavailable_reason(cls) -> str | None:
        return None

    async def spawn(self, limits: Limits) -> Channel:
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "LANG": "C.UTF-8",
            "OMP_NUM_THREADS": "1",
            "OPENBLAS_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1",
        }
        progress = ProgressPage()
        try:
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-I",
                "-u",
                str(WORKER_SOURCE),
                "--progress-fd",
                str(progress.fd),
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.DEVNULL,
                pass_fds=(progress.fd,),
                env=env,
                start_new_session=True,
            )
        except BaseException:
            progress.close()
            raise
        progress.hand_over()
        return PipeChannel(proc, progress)
