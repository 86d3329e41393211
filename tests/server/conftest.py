"""A real uvicorn server on a loopback port, per test module."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import uvicorn

from rftgrade._registry import GraderRegistry
from rftgrade.server import ServerConfig, create_app
from rftgrade.server._protocol import uvicorn_options


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve_refusal(*args: str) -> str:
    """``rftgrade serve ARGS``'s error, asserting it exits 2 (a bad option) before serving."""
    done = subprocess.run(
        [sys.executable, "-m", "rftgrade", "serve", *args], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2, (done.returncode, done.stderr)
    return done.stderr


@contextmanager
def running_server(
    config: ServerConfig, registry: GraderRegistry | None = None, **options: Any
) -> Iterator[str]:
    """``options``: for :func:`rftgrade.server._protocol.uvicorn_options` (what ``rftgrade serve`` runs)."""
    port = free_port()
    app = create_app(config, registry=registry)
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host="127.0.0.1",
            port=port,
            log_level="warning",
            access_log=False,
            **uvicorn_options(**options),
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.05)
    try:
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def openrlhf_rewards(config: ServerConfig, body: dict[str, Any]) -> list[float]:
    """The rewards a server with ``config`` answers OpenRLHF's ``body`` with."""
    with running_server(config) as url:
        rewards: list[float] = httpx.post(url + "/v1/openrlhf/reward", json=body, timeout=30).json()[
            "rewards"
        ]
    return rewards


ServerFactory = Callable[..., "contextmanager[str]"]
