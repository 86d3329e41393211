"""``rftgrade sandbox doctor --ray``: which sandbox backends each node of a Ray cluster can run."""

from __future__ import annotations

from typing import Any

from rftgrade._exceptions import BackendUnavailableError
from rftgrade.sandbox._ray_actor import error_summary, import_ray, probe_node

__all__ = ["ray_doctor"]


def ray_doctor(address: str = "auto", timeout: float = 30.0) -> list[dict[str, Any]]:
    """Per live node of the cluster at ``address``: its id, address, CPUs and which backends run there.

    Raises:
        BackendUnavailableError: Ray is missing or no cluster answers.
    """
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    ray = import_ray()
    owns = not ray.is_initialized()
    if owns:
        try:
            ray.init(address=address, log_to_driver=False, logging_level="warning")
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise BackendUnavailableError(f"--ray {address}: no Ray cluster answers there ({exc})") from exc
    try:
        probe = ray.remote(probe_node)
        rows = []
        for node in ray.nodes():
            if not node.get("Alive"):
                continue
            row: dict[str, Any] = {
                "node_id": node["NodeID"],
                "address": node.get("NodeManagerAddress", ""),
                "ray_cpus": node.get("Resources", {}).get("CPU", 0),
            }
            strategy = NodeAffinitySchedulingStrategy(node["NodeID"], soft=False)
            try:
                found = ray.get(
                    probe.options(num_cpus=0, scheduling_strategy=strategy).remote(), timeout=timeout
                )
                row["backends"] = found["backends"]
            except Exception as exc:  # the node did not answer: say so, keep the others
                row["error"] = error_summary(exc)
            rows.append(row)
        return rows
    finally:
        if owns:
            ray.shutdown()
