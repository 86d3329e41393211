"""The docker backend's channel: a bind-mounted unix socket where the engine shares
this host's files, and the attach socket, once and for all, where it does not."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rftgrade import Grader
from rftgrade.sandbox import Limits, SandboxExecutor
from rftgrade.sandbox._channel import Channel
from rftgrade.sandbox._docker_channels import AttachChannel, SocketChannel
from rftgrade.sandbox._select import backend_class
from rftgrade.sandbox.docker import _HOST, LABEL, DockerBackend, _client

from ..conftest import require_or_skip

SOURCE = """
import os
def grade(sample, item):
    if item.get("exit"):
        os._exit(0)
    return 1.0 if sample["output_text"] == item["answer"] else 0.0
"""


@pytest.fixture(autouse=True)
def _docker() -> None:
    require_or_skip(backend_class("docker").unavailable_reason() is None, "the docker sandbox")


class _Recording(DockerBackend):
    """The real backend; notes which channel each worker got and what was mounted."""

    def __init__(self) -> None:
        super().__init__()
        self.channels: list[str] = []
        self.mounted: list[str | None] = []

    async def spawn(self, limits: Limits) -> Channel:
        channel = await super().spawn(limits)
        self.channels.append(type(channel).__name__)
        return channel

    def _run_container(self, limits: Limits, channel_dir: str | None = None) -> Any:
        self.mounted.append(channel_dir)
        return super()._run_container(limits, channel_dir)


def _grade_through(backend: _Recording) -> list[Any]:
    executor = SandboxExecutor(backend, workers=2, limits=Limits(timeout=5))
    grader = Grader({"type": "python", "name": "chan", "source": SOURCE}, python=executor)
    try:
        # Every `exit` row kills its worker: replacements are spawned mid-batch.
        rows = [("a", {"answer": "a"}), ("b", {"exit": True}), ("c", {"answer": "x"})] * 20
        return grader.run_batch(rows)
    finally:
        grader.close()


def _check(results: list[Any]) -> None:
    assert [r.reward for r in results] == [1.0, 0.0, 0.0] * 20
    assert all(r.ok for r in results[0::3]) and all(r.ok for r in results[2::3])
    assert all(r.errors.python_grader_runtime_error for r in results[1::3])


def test_workers_talk_over_the_bind_mounted_socket() -> None:
    backend = _Recording()
    assert backend.direct
    _check(_grade_through(backend))
    assert len(backend.channels) >= 4 and set(backend.channels) == {SocketChannel.__name__}
    assert all(backend.mounted)
    assert not list(Path(tempfile.gettempdir()).glob(f"rftgrade-channel-{os.getpid()}-*")), (
        "channel dirs left"
    )


class _ElsewhereBackend(_Recording):
    """An engine that sees other files than ours (a client inside another container,
    Docker Desktop's VM): the mounted directory is not the one we listen in."""

    def __init__(self, source: str) -> None:
        super().__init__()
        self.source = source

    def _run_container(self, limits: Limits, channel_dir: str | None = None) -> Any:
        self.mounted.append(channel_dir)
        return DockerBackend._run_container(self, limits, None if channel_dir is None else self.source)


@pytest.fixture(params=["empty_dir", "missing_dir"])
def elsewhere(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    # empty_dir: the worker starts, cannot connect and exits with CONNECT_FAILED;
    # missing_dir: the engine refuses the mount.
    target = tmp_path / "seen-by-the-engine"
    if request.param == "empty_dir":
        target.mkdir()
        target.chmod(0o755)
    yield str(target)


def test_an_engine_that_cannot_see_our_files_falls_back_to_attach(
    elsewhere: str, caplog: pytest.LogCaptureFixture
) -> None:
    backend = _ElsewhereBackend(elsewhere)
    with caplog.at_level(logging.WARNING, logger="rftgrade.sandbox.docker"):
        _check(_grade_through(backend))
    assert len(backend.channels) >= 4 and set(backend.channels) == {AttachChannel.__name__}
    assert not backend.direct
    # The first workers (started together) try the socket; every later one (those
    # replacing the workers the `exit` rows killed) goes straight to attach.
    tried = [m is not None for m in backend.mounted]
    assert 1 <= sum(tried) <= 2 and tried == sorted(tried, reverse=True)
    assert caplog.text.count("attach socket instead") == 1
    assert not _client().containers.list(all=True, filters={"label": f"{LABEL}.owner={_HOST}:{os.getpid()}"})


@pytest.mark.parametrize(("setting", "says"), [("auto", "unix socket"), ("attach", "attach socket")])
def test_doctor_says_which_channel_a_worker_gets(setting: str, says: str) -> None:
    env = {**os.environ, "RFTGRADE_DOCKER_CHANNEL": setting}
    proc = subprocess.run(
        [sys.executable, "-m", "rftgrade", "sandbox", "doctor"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    docker_lines = proc.stdout.split("✓ docker", 1)[1].splitlines()
    assert "channel:" in docker_lines[1] and says in docker_lines[1], proc.stdout
    assert not _client().containers.list(all=True, filters={"label": f"{LABEL}.owner={_HOST}:{os.getpid()}"})


def test_a_mistyped_channel_setting_is_an_error_naming_it(tmp_path: Path) -> None:
    grader = tmp_path / "grader.json"
    grader.write_text('{"type": "python", "name": "p", "source": "def grade(s, i):\\n    return 1.0\\n"}')
    env = {**os.environ, "RFTGRADE_DOCKER_CHANNEL": "sockets"}
    proc = subprocess.run(
        [sys.executable, "-m", "rftgrade", "run", str(grader), "--sample", "x", "--sandbox", "docker"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    said = " ".join(proc.stderr.split())  # the console wraps long lines
    assert proc.returncode != 0
    assert "RFTGRADE_DOCKER_CHANNEL is 'sockets'" in said and "auto, socket, attach" in said
