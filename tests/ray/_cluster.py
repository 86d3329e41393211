"""A real multi-node Ray cluster on this machine, kept on loopback (see shared ray.md).

``LOOPBACK_ENV`` must be in the environment before ``import ray``: the test
modules import this first, and so do the CLI subprocesses they start.
"""

from __future__ import annotations

import os
import signal
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]

LOOPBACK_ENV = {
    "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
    "RAY_USAGE_STATS_ENABLED": "0",
    "RAY_USAGE_STATS_REPORT_URL": "http://127.0.0.1:9/",
    "http_proxy": "http://127.0.0.1:9",
    "https_proxy": "http://127.0.0.1:9",
    "HTTP_PROXY": "http://127.0.0.1:9",
    "HTTPS_PROXY": "http://127.0.0.1:9",
    "no_proxy": "127.0.0.1,localhost,::1",
    "NO_PROXY": "127.0.0.1,localhost,::1",
}


def loopback_env(tmpdir: str) -> dict[str, str]:
    """The variables, plus this checkout on PYTHONPATH so that every node's workers
    import the rftgrade under test."""
    path = os.environ.get("PYTHONPATH", "")
    return {
        **LOOPBACK_ENV,
        "RAY_TMPDIR": tmpdir,
        "PYTHONPATH": f"{ROOT}{os.pathsep}{path}" if path else str(ROOT),
    }


# Before anything imports ray: it reads some of these once, at import.
_TMP = tempfile.mkdtemp(prefix="rftgrade-ray-")
os.environ.update(loopback_env(_TMP))

NODE_ARGS: dict[str, Any] = {
    "num_cpus": 1,
    "include_dashboard": False,
    "node_ip_address": "127.0.0.1",
    "object_store_memory": 80 * 1024**2,
}


class LoopbackCluster:
    """A head without CPUs (so no pool actor lands on it) and worker nodes of one CPU each."""

    def __init__(self, workers: int = 2) -> None:
        self.tmp = _TMP
        from ray.cluster_utils import Cluster

        self.cluster = Cluster(
            initialize_head=True,
            head_node_args={**NODE_ARGS, "num_cpus": 0},
        )
        self.workers = [self.add_node() for _ in range(workers)]
        self.cluster.wait_for_nodes()

    @property
    def address(self) -> str:
        return str(self.cluster.address)

    def add_node(self) -> Any:
        return self.cluster.add_node(**NODE_ARGS)

    def kill_node(self, node: Any) -> None:
        """Kill a whole node (raylet and what it started), as a machine that goes away."""
        pid = node.all_processes["raylet"][0].process.pid
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.cluster.remove_node(node, allow_graceful=False)
        if node in self.workers:
            self.workers.remove(node)

    def shutdown(self) -> None:
        import shutil

        import ray

        ray.shutdown()
        self.cluster.shutdown()
        shutil.rmtree(self.tmp, ignore_errors=True)
