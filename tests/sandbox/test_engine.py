"""The docker backend's engine calls: the stdlib client of this host's socket and the
SDK's, against the real engine; the hardening a container is created with, read
back from the engine; and the SDK's transport driving a whole pool."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from typing import Any

import pytest

from rftgrade import Grader
from rftgrade.sandbox import Limits, SandboxExecutor
from rftgrade.sandbox import docker as docker_backend
from rftgrade.sandbox._engine import ContainerRef, Engine, EngineError, LocalEngine, SdkEngine, local_socket
from rftgrade.sandbox._select import backend_class
from rftgrade.sandbox.docker import (
    _HOST,
    IMAGE,
    LABEL,
    DockerBackend,
    _client,
    container_config,
    run_container,
)

from ..conftest import require_or_skip

OWNER = f"{_HOST}:{os.getpid()}"
LIMITS = Limits(memory_bytes=256 * 1024**2, disk_bytes=32 * 1024**2, cpus=1.5, pids=48)


@pytest.fixture(autouse=True)
def _docker() -> None:
    require_or_skip(backend_class("docker").unavailable_reason() is None, "the docker sandbox")


def _engines() -> list[tuple[str, Engine]]:
    path = local_socket()
    assert path is not None
    return [("stdlib", LocalEngine(path)), ("sdk", SdkEngine(_client().api))]


@pytest.fixture(params=["stdlib", "sdk"])
def engine(request: pytest.FixtureRequest) -> Engine:
    return dict(_engines())[request.param]


@pytest.fixture
def started(engine: Engine) -> Iterator[ContainerRef]:
    with tempfile.TemporaryDirectory() as channel_dir:
        container = run_container(engine, IMAGE, OWNER, LIMITS, channel_dir)
        try:
            container.reload()
            yield container
        finally:
            container.remove()


def test_the_engine_holds_the_hardening_the_container_was_created_with(started: ContainerRef) -> None:
    host: dict[str, Any] = started.attrs["HostConfig"]
    assert host["NetworkMode"] == "none"
    assert host["ReadonlyRootfs"] is True
    assert host["CapDrop"] == ["ALL"]
    assert host["IpcMode"] == "private"
    assert host["LogConfig"]["Type"] == "none"
    assert host["Memory"] == host["MemorySwap"] == LIMITS.memory_bytes
    assert host["NanoCpus"] == 1_500_000_000 and host["PidsLimit"] == 48
    assert host["Tmpfs"] == {"/tmp": f"rw,nosuid,nodev,size={LIMITS.disk_bytes}"}
    assert "no-new-privileges" in host["SecurityOpt"]
    assert any(opt.startswith("seccomp=") and '"defaultAction"' in opt for opt in host["SecurityOpt"])
    (mount,) = host["Mounts"]
    assert mount["Type"] == "bind" and mount["ReadOnly"] is True and mount["Target"] == "/run/rftgrade"
    config = started.attrs["Config"]
    assert config["User"] == "10001:10001"
    assert config["Labels"][f"{LABEL}.owner"] == OWNER
    assert config["Cmd"][:2] == ["--connect", "/run/rftgrade/s"]
    assert started.status == "running"


def test_the_attach_form_keeps_stdin_open_and_mounts_nothing() -> None:
    config = container_config(IMAGE, OWNER, LIMITS)
    assert config["OpenStdin"] is True and "Mounts" not in config["HostConfig"]
    assert config["Cmd"][0] == "--progress-file"


def test_listing_and_removal_and_what_a_removed_container_says(engine: Engine) -> None:
    container = run_container(engine, IMAGE, OWNER, LIMITS)
    listed = [entry["Id"] for entry in engine.containers(f"{LABEL}.owner={OWNER}")]
    assert container.id in listed
    container.remove()
    assert container.id not in [entry["Id"] for entry in engine.containers(f"{LABEL}.owner={OWNER}")]
    with pytest.raises(EngineError) as caught:
        container.reload()
    assert caught.value.status == 404
    with pytest.raises(EngineError):
        container.remove()


def test_an_engine_error_carries_the_engines_words(engine: Engine) -> None:
    config = container_config("rftgrade/no-such-image:never", OWNER, LIMITS)
    with pytest.raises(EngineError) as caught:
        engine.create(config, "rftgrade-test-missing-image")
    assert caught.value.status == 404
    assert "no-such-image" in str(caught.value)


def test_the_stdlib_client_answers_ping_and_images() -> None:
    path = local_socket()
    assert path is not None
    engine = LocalEngine(path)
    engine.ping()
    assert engine.has_image(IMAGE)
    assert not engine.has_image("rftgrade/no-such-image:never")


@pytest.mark.parametrize(
    ("setting", "path"),
    [
        (None, "/var/run/docker.sock"),
        ("unix:///run/user/1000/docker.sock", "/run/user/1000/docker.sock"),
        ("tcp://10.0.0.5:2376", None),
        ("ssh://me@builder", None),
    ],
)
def test_which_engines_are_this_hosts_socket(
    monkeypatch: pytest.MonkeyPatch, setting: str | None, path: str | None
) -> None:
    if setting is None:
        monkeypatch.delenv("DOCKER_HOST", raising=False)
    else:
        monkeypatch.setenv("DOCKER_HOST", setting)
    assert local_socket() == path


def test_an_engine_reached_through_the_sdk_runs_a_pool_over_attach(monkeypatch: pytest.MonkeyPatch) -> None:
    """What a remote DOCKER_HOST gets: every call through the SDK, workers over attach."""
    monkeypatch.setattr(docker_backend, "local_socket", lambda: None)
    backend = DockerBackend()
    assert isinstance(backend.engine, SdkEngine) and not backend.direct
    assert backend.why_attach is not None and "not on this host" in backend.why_attach
    executor = SandboxExecutor(backend, workers=2, limits=Limits(timeout=5))
    source = "def grade(sample, item):\n    return float(sample['output_text'] == item['answer'])\n"
    grader = Grader({"type": "python", "name": "sdk", "source": source}, python=executor)
    try:
        results = grader.run_batch([("a", {"answer": "a"}), ("b", {"answer": "c"})] * 10)
        pools = executor.stats()
    finally:
        grader.close()
    assert [r.reward for r in results] == [1.0, 0.0] * 10
    assert pools and pools[0]["spawned"] >= 1
    assert not _client().api.containers(all=True, filters={"label": f"{LABEL}.owner={OWNER}"})
