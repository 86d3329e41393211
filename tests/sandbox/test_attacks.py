"""Attack cases, in every isolating backend and isolation level: each sample gets its flag,
its neighbours their correct scores, nothing is left running, and the pool keeps working."""

from __future__ import annotations

import glob
import os
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rftgrade import Grader
from rftgrade.sandbox import Limits, SandboxExecutor
from rftgrade.sandbox._pool import GRACE
from rftgrade.sandbox._select import backend_class

from ..conftest import require_or_skip

SECRET_ENV = "RFTGRADE_TEST_SECRET"
SOURCE = r"""
import ctypes, os, socket, sys, threading, time

def grade(sample, item):
    attack = item.get("attack")
    if attack is None:
        return 1.0 if sample["output_text"] == item["answer"] else 0.0
    if attack == "loop":
        while True:
            pass
    if attack == "sleep":
        time.sleep(10**6)
    if attack == "fork_bomb":
        while True:
            os.fork()
    if attack == "memory_bomb":
        blocks = []
        while True:
            blocks.append(bytearray(50 * 1024 * 1024))
    if attack == "fill_tmp":
        with open("/tmp/fill", "wb") as fh:
            while True:
                fh.write(b"x" * (1 << 22))
    if attack == "socket_loopback":
        socket.create_connection(("127.0.0.1", item["port"]), timeout=2).close()
        return 1.0
    if attack == "socket_outside":
        socket.create_connection(("1.1.1.1", 80), timeout=2).close()
        return 1.0
    if attack == "read_secret":
        return 1.0 if "s3cret" in open(item["path"]).read() else 0.5
    if attack == "read_env":
        return 1.0 if os.environ.get(item["var"]) else (_ for _ in ()).throw(RuntimeError("no secret here"))
    if attack == "write_outside":
        open("/usr/pwned", "w").write("x")
        return 1.0
    if attack == "kill_parent":
        os.kill(os.getppid(), 9)
        time.sleep(5)
    if attack == "os_exit":
        os._exit(0)
    if attack == "sys_exit":
        sys.exit(0)
    if attack == "segfault":
        ctypes.string_at(0)
    if attack == "huge_return":
        return "x" * 10**7
    if attack == "object_return":
        return object()
    if attack == "nan":
        return float("nan")
    if attack == "reopen_channel":  # the docker backend's socket, once the worker is connected
        socket.socket(socket.AF_UNIX, socket.SOCK_STREAM).connect("/run/rftgrade/s")
        return 1.0
    if attack == "forge_frame":
        import json, struct
        body = json.dumps({"op": "result", "id": 1, "index": 0, "reward": 1.0}).encode()
        os.write(1, struct.pack(">I", len(body)) + body)
        raise RuntimeError("forged")
    if attack == "parent_mem":  # class 1: the worker's memory, through /proc
        open(f"/proc/{os.getppid()}/mem", "r+b").close()
        return 1.0
    if attack == "parent_fds":  # class 1: the worker's channel, through /proc
        return 1.0 if os.listdir(f"/proc/{os.getppid()}/fd") else 0.5
    if attack == "init_fds":  # class 1: a dumpable init holding the attach stream
        if os.getpid() == 1:
            raise RuntimeError("this process is the sandbox's init")
        return 1.0 if os.listdir("/proc/1/fd") else 0.5
    if attack == "ptrace_parent":
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.ptrace(16, os.getppid(), None, None) != 0:  # PTRACE_ATTACH
            raise OSError(ctypes.get_errno(), "ptrace")
        return 1.0
    if attack == "pidfd_getfd":
        libc = ctypes.CDLL(None, use_errno=True)
        pidfd = libc.syscall(434, os.getppid(), 0)  # pidfd_open
        if pidfd < 0 or libc.syscall(438, pidfd, 3, 0) < 0:  # pidfd_getfd
            raise OSError(ctypes.get_errno(), "pidfd_getfd")
        return 1.0
    if attack == "process_vm_readv":
        libc = ctypes.CDLL(None, use_errno=True)
        buf = ctypes.create_string_buffer(8)
        class iovec(ctypes.Structure):
            _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]
        local, remote = iovec(ctypes.addressof(buf), 8), iovec(id(None), 8)  # same address in a fork
        if libc.syscall(310, os.getppid(), ctypes.byref(local), 1, ctypes.byref(remote), 1, 0) != 8:
            raise OSError(ctypes.get_errno(), "process_vm_readv")
        return 1.0
    if attack == "bad_reply":  # class 3 and 4: a reply the worker would pass on, on every fd
        import json, struct
        frame = sys._getframe()
        while frame is not None and "request_id" not in frame.f_locals:
            frame = frame.f_back
        found = frame.f_locals if frame is not None else {}
        huge = int("9" * 400)
        if found.get("forked"):  # a forked sample's reply pipe
            body = {"reward": 1.0, "duration_ns": huge, "stdout": "x" * 5_000_000}
        else:  # the worker's own channel
            body = {"op": "results", "id": found.get("request_id"), "start": found.get("first"),
                    "rewards": [1.0], "durations": [huge], "extra": [[0, {"stdout": "x" * 5_000_000}]]}
        data = json.dumps(body).encode()
        for fd in range(3, 64):
            try:
                os.write(fd, struct.pack(">I", len(data)) + data)
            except OSError:
                pass
        os._exit(0)
    if attack == "write_root":  # class 5: the sandbox's / is read-only
        open("/pwned", "w").write("x")
        return 1.0
    if attack == "fill_shm":  # class 5: /dev/shm is sized
        for n in range(4):
            with open(f"/dev/shm/fill{n}", "wb") as fh:
                for _ in range(12):
                    fh.write(b"x" * (1 << 22))
        return 1.0
    if attack == "memfd_hoard":  # class 5: memfds past the memory limit (not mapped: no RLIMIT_AS)
        fds = []
        for _ in range(25):
            fd = os.memfd_create("hoard")
            for _ in range(8):
                os.write(fd, b"x" * (1 << 22))
            fds.append(fd)
        return 1.0
    raise ValueError(attack)
"""

ATTACKS = [
    "loop",
    "sleep",
    "fork_bomb",
    "memory_bomb",
    "fill_tmp",
    "socket_loopback",
    "socket_outside",
    "read_secret",
    "read_env",
    "write_outside",
    "kill_parent",
    "os_exit",
    "sys_exit",
    "segfault",
    "huge_return",
    "object_return",
    "nan",
    "forge_frame",
    "reopen_channel",
    "parent_mem",
    "parent_fds",
    "init_fds",
    "ptrace_parent",
    "pidfd_getfd",
    "process_vm_readv",
    "bad_reply",
    "write_root",
    "fill_shm",
    "memfd_hoard",
]


def _ours(pid: int, parents: dict[int, int], started: dict[int, int]) -> bool:
    """Started by this test process (a descendant), or orphaned since it began: other
    test runs on this machine use the same sandbox uid."""
    me, mine_started = os.getpid(), started.get(os.getpid(), 0)
    seen = set()
    while pid not in seen and pid > 1:
        seen.add(pid)
        if pid == me:
            return True
        parent = parents.get(pid, 0)
        if parent == 1:
            return started.get(pid, 0) >= mine_started
        pid = parent
    return False


def _sandbox_processes(wait: float = 3.0) -> list[str]:
    """Live processes of the sandbox uid that are this run's, after up to ``wait``
    seconds for the ones being killed (an exited bwrap is a zombie until reaped: not
    running)."""
    deadline = time.monotonic() + wait
    while True:
        out = subprocess.run(
            ["ps", "-e", "-ww", "-o", "pid=,ppid=,uid=,stat=,args="], capture_output=True, text=True
        )
        rows = [line.split(None, 4) for line in out.stdout.splitlines() if line.strip()]
        parents = {int(r[0]): int(r[1]) for r in rows}
        started = {}
        for pid in parents:
            try:
                with open(f"/proc/{pid}/stat") as fh:
                    started[pid] = int(fh.read().rsplit(")", 1)[1].split()[19])
            except (OSError, IndexError, ValueError):
                started[pid] = 0
        live = [
            " ".join(r)
            for r in rows
            if r[2] == "65534" and not r[3].startswith("Z") and _ours(int(r[0]), parents, started)
        ]
        if not live or time.monotonic() > deadline:
            return live
        time.sleep(0.1)


@pytest.fixture(scope="module")
def loopback_port() -> Iterator[int]:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
                conn.close()
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    server.close()


@pytest.fixture(scope="module")
def secret_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("host") / "secret.txt"
    path.write_text("s3cret")
    path.chmod(0o644)
    for parent in path.parents:  # readable by anyone on the host: only isolation can hide it
        if str(parent).startswith("/tmp/"):
            parent.chmod(0o755)
    return path


# docker-attach: the docker backend's fallback channel (engines that cannot see this host's files).
PARAMS = [
    ("docker", "worker"),
    ("docker", "sample"),
    ("docker-attach", "worker"),
    ("docker-attach", "sample"),
    ("bwrap", "worker"),
    ("bwrap", "sample"),
]


def _containers_left() -> list[str]:
    from rftgrade.sandbox.docker import _HOST, LABEL, _client

    # This process's own: other test runs may share the engine.
    mine = f"{LABEL}.owner={_HOST}:{os.getpid()}"
    # The low-level list: the SDK's inspects each container, failing on one just removed.
    return [c["Id"][:12] for c in _client().api.containers(all=True, filters={"label": mine})]


@pytest.fixture(params=PARAMS, ids=lambda p: f"{p[0]}-{p[1]}", scope="module")
def grader(request: pytest.FixtureRequest) -> Iterator[Grader]:
    backend, isolation = request.param
    engine = backend.partition("-")[0]
    require_or_skip(backend_class(engine).unavailable_reason() is None, f"the {engine} sandbox")
    os.environ[SECRET_ENV] = "s3cret"
    chosen: Any = engine
    if backend == "docker-attach":
        from rftgrade.sandbox.docker import DockerBackend

        chosen = DockerBackend()
        chosen.direct = False
    executor = SandboxExecutor(
        chosen,
        isolation=isolation,
        workers=2,
        limits=Limits(timeout=2.0, memory_bytes=512 * 1024**2, disk_bytes=64 * 1024**2, pids=32),
    )
    g = Grader({"type": "python", "name": "attacks", "source": SOURCE}, python=executor)
    yield g
    g.close()
    if engine == "docker":
        assert not _containers_left(), "containers left behind"
    leftovers = _sandbox_processes()
    assert not leftovers, f"processes left behind: {leftovers}"


def _strays(executor: SandboxExecutor) -> list[str]:
    """What runs for this test process's sandboxes beyond its pools' idle workers:
    bwrap processes (uid 65534) that are neither bwrap nor a worker, docker
    containers beyond the live workers or running anything but their worker, and
    channel directories not yet removed."""
    live = sum(pool["live_workers"] for pool in executor.stats())
    found = [
        f"channel dir {d}"
        for d in glob.glob(os.path.join(tempfile.gettempdir(), f"rftgrade-channel-{os.getpid()}-*"))
    ]
    if executor.backend.name == "docker":
        from rftgrade.sandbox.docker import _HOST, LABEL, _client

        mine = f"{LABEL}.owner={_HOST}:{os.getpid()}"
        api = _client().api
        containers = api.containers(all=True, filters={"label": mine})
        if len(containers) > live:
            found.append(f"{len(containers)} containers for {live} live workers")
        for container in containers:
            try:
                processes = api.top(container["Id"], ps_args="-o pid,args").get("Processes") or []
            except Exception:  # removed meanwhile: nothing runs in it
                continue
            rows = [" ".join(row) for row in processes]
            found += [f"{container['Id'][:12]}: {row}" for row in rows if "worker.py" not in row]
    else:
        rows = _sandbox_processes(wait=0.0)
        workers = [row for row in rows if "worker.py" in row and "bwrap" not in row]
        found += [row for row in rows if "worker.py" not in row]
        if len(workers) > live:
            found.append(f"{len(workers)} worker processes for {live} live workers")
    return found


@pytest.fixture(autouse=True)
def nothing_left_running(request: pytest.FixtureRequest) -> Iterator[None]:
    """After every attack: nothing runs but the pools' idle workers (by uid, by
    docker label and in each container), and no channel directory is left."""
    yield
    if "grader" not in request.fixturenames:
        return
    executor = request.getfixturevalue("grader").runtime.python
    assert isinstance(executor, SandboxExecutor)
    deadline = time.monotonic() + 5.0  # what is being killed may take a moment to go
    while (left := _strays(executor)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not left, f"left running after the test: {left}"


def item_for(attack: str, port: int, secret: Path) -> dict[str, Any]:
    return {"attack": attack, "port": port, "path": str(secret), "var": SECRET_ENV}


@pytest.mark.parametrize("attack", ATTACKS)
def test_attack_is_contained(grader: Grader, attack: str, loopback_port: int, secret_file: Path) -> None:
    rows = [
        ("ok", {"answer": "ok"}),
        ("x", item_for(attack, loopback_port, secret_file)),
        ("no", {"answer": "ok"}),
        ("ok", {"answer": "ok"}),
    ]
    good1, bad, wrong, good2 = grader.run_batch(rows)
    assert (good1.reward, wrong.reward, good2.reward) == (1.0, 0.0, 1.0), (
        good1.error_messages,
        good2.error_messages,
    )
    assert good1.ok and wrong.ok and good2.ok
    assert bad.reward == 0.0
    assert bad.errors.python_grader_runtime_error or bad.errors.python_grader_server_error, bad.to_dict()
    # The same pool scores the next batch normally.
    again = grader.run_batch([("ok", {"answer": "ok"}), ("no", {"answer": "ok"})])
    assert [r.reward for r in again] == [1.0, 0.0] and all(r.ok for r in again)


def test_timeouts_say_so(grader: Grader, loopback_port: int, secret_file: Path) -> None:
    (result,) = grader.run_batch([("x", item_for("loop", loopback_port, secret_file))])
    assert result.errors.unresponsive_reward_error and result.errors.python_grader_runtime_error
    assert "2s" in (result.errors.python_grader_runtime_error_details or "")


def test_stdout_flood_is_bounded(grader: Grader) -> None:
    source = "def grade(sample, item):\n    print('x' * 100_000_000)\n    return 1.0\n"
    flood = Grader({"type": "python", "name": "flood", "source": source}, python=grader.runtime.python)
    (result,) = flood.run_batch([("a", {})])
    assert result.reward == 1.0
    assert len(result.scores["stdout"]) < 20_000


def test_thread_left_running_recycles_worker(grader: Grader) -> None:
    source = (
        "import threading, time\n"
        "def grade(sample, item):\n"
        "    threading.Thread(target=time.sleep, args=(100,), daemon=True).start()\n"
        "    return 1.0\n"
    )
    threads = Grader({"type": "python", "name": "threads", "source": source}, python=grader.runtime.python)
    results = threads.run_batch([("a", {})] * 5)
    assert [r.reward for r in results] == [1.0] * 5
    executor = grader.runtime.python
    assert isinstance(executor, SandboxExecutor)
    (pool,) = [p for p in executor.stats() if p["samples"] == 5]
    # A shared worker with a stray thread is replaced after each sample; a forked child takes its thread with it.
    assert pool["recycled"] == (5 if pool["isolation"] == "worker" else 0)


def test_runtime_errors_carry_type_message_and_trimmed_traceback(grader: Grader) -> None:
    source = "def helper(x):\n    return x['missing']\n\ndef grade(sample, item):\n    return helper(item)\n"
    broken = Grader({"type": "python", "name": "broken", "source": source}, python=grader.runtime.python)
    (result,) = broken.run_batch([("a", {"k": 1})])
    details = result.errors.python_grader_runtime_error_details or ""
    assert "KeyError" in details and "line 2" in details and "worker.py" not in details


def test_load_errors_are_reported_with_the_line(grader: Grader) -> None:
    source = "import json\nraise RuntimeError('boom at import')\ndef grade(sample, item):\n    return 1.0\n"
    broken = Grader(
        {"type": "python", "name": "import-fails", "source": source}, python=grader.runtime.python
    )
    results = broken.run_batch([("a", {}), ("b", {})])
    for result in results:
        assert result.errors.python_grader_runtime_error
        assert "boom at import" in (result.errors.python_grader_runtime_error_details or "")
        assert "line 2" in (result.errors.python_grader_runtime_error_details or "")


STATE_SOURCE = r"""
import os, subprocess

def grade(sample, item):
    home = os.environ.get("HOME", "/tmp")
    if item.get("plant"):
        open(os.path.join(home, "usercustomize.py"), "w").write("raise SystemExit")
        os.makedirs(os.path.join(home, ".local"), exist_ok=True)
        subprocess.Popen(["/bin/sleep", "1000"], start_new_session=True)
        return 0.0
    mine = {os.getpid(), os.getppid(), 1}
    others = [p for p in os.listdir("/proc") if p.isdigit() and int(p) not in mine]
    planted = [n for n in os.listdir(home) if n in ("usercustomize.py", ".local")]
    return 0.0 if others or (planted and item.get("files")) else 1.0
"""


def test_a_sample_leaves_nothing_behind(grader: Grader) -> None:
    """Class 2: a sample's files in /tmp ($HOME) and its daemons are gone before the next one."""
    executor = grader.runtime.python
    assert isinstance(executor, SandboxExecutor)
    state = Grader({"type": "python", "name": "state", "source": STATE_SOURCE}, python=executor)
    # One process runs every sample in worker isolation by design: there only
    # processes are swept, files stay.
    files = executor.isolation == "sample"
    results = state.run_batch([("a", {"plant": True})] + [("b", {"files": files})] * 3)
    assert [r.reward for r in results] == [0.0, 1.0, 1.0, 1.0], [r.to_dict() for r in results]


SLOW_SOURCE = "import time\ndef grade(sample, item):\n    time.sleep(1.5)\n    return 1.0\n"


def test_a_batch_deadline_flags_what_is_left(grader: Grader) -> None:
    """Class 7: samples just under the per-sample limit (2 s) do not add up past the batch's."""
    executor = grader.runtime.python
    slow = Grader(
        {"type": "python", "name": "slow", "source": SLOW_SOURCE}, python=executor, python_batch_timeout=4.0
    )
    start = time.monotonic()
    results = slow.run_batch([("a", {})] * 12)  # 2 workers x 6 x 1.5 s = 9 s without the deadline
    elapsed = time.monotonic() - start
    done = [r for r in results if r.reward == 1.0]
    late = [r for r in results if r.errors.unresponsive_reward_error]
    assert len(done) + len(late) == 12 and 2 <= len(done) <= 8 and late, [r.to_dict() for r in results]
    assert "batch's time limit (4s)" in (late[0].errors.python_grader_runtime_error_details or "")
    assert elapsed < 4.0 + 2.5, elapsed  # the deadline, plus replacing the workers still grading
    # The pool then grades normally.
    assert [r.reward for r in grader.run_batch([("ok", {"answer": "ok"})])] == [1.0]


SWALLOWS_TIMEOUT = r"""
def grade(sample, item):
    if item.get("hang") == "python":
        while True:  # swallows the worker's TimeoutError and goes on
            try:
                while True:
                    pass
            except BaseException:
                pass
    if item.get("hang") == "c":
        sum(range(10**14))  # in C, holding the GIL: no signal handler runs
    return 1.0
"""


@pytest.mark.parametrize("hang", ["python", "c"])
def test_a_hanging_sample_costs_its_batch_one_time_limit(grader: Grader, hang: str) -> None:
    """Class 7: the worker's progress frame names the sample that hangs, so its chunk
    is not re-run sample by sample (where the culprit would hang a second time)."""
    executor = grader.runtime.python
    assert isinstance(executor, SandboxExecutor)
    hangs = Grader({"type": "python", "name": f"hang-{hang}", "source": SWALLOWS_TIMEOUT}, python=executor)
    rows = (
        [("a", {"k": k}) for k in range(4)] + [("a", {"hang": hang})] + [("a", {"k": k}) for k in range(4, 8)]
    )
    started = time.monotonic()
    results = hangs.run_batch(rows)
    elapsed = time.monotonic() - started
    assert [r.reward for r in results] == [1.0] * 4 + [0.0] + [1.0] * 4, [r.to_dict() for r in results]
    assert results[4].errors.unresponsive_reward_error
    # One limit is 2 s plus the host's 2 s grace (about 5 s with a fresh worker);
    # a second run of the culprit would add another 4 s.
    one_limit = 2.0 + GRACE
    assert elapsed < 1.8 * one_limit, elapsed


SPOILS_ITS_PAGE = r"""
import os

def grade(sample, item):
    page = item.get("page")
    if page:
        os.unlink(PATH)
        if page == "fifo":  # a reader blocks opening it
            os.mkfifo(PATH)
        else:  # endless data
            os.symlink("/dev/zero", PATH)
        sum(range(10**14))
    return 1.0
"""


@pytest.fixture(scope="module")
def attach_worker() -> Iterator[SandboxExecutor]:
    """A docker-attach pool in worker isolation: the one channel whose progress page is a
    file the grader could replace (every other keeps it in a memfd)."""
    require_or_skip(backend_class("docker").unavailable_reason() is None, "the docker sandbox")
    from rftgrade.sandbox.docker import DockerBackend

    backend = DockerBackend()
    backend.direct = False
    executor = SandboxExecutor(
        backend,
        isolation="worker",
        workers=2,
        limits=Limits(timeout=2.0, memory_bytes=512 * 1024**2, disk_bytes=64 * 1024**2, pids=32),
    )
    yield executor
    Grader(TRIVIAL_PYTHON, python=executor).close()  # handed over, so closed with it
    assert not _containers_left(), "containers left behind"


TRIVIAL_PYTHON = {"type": "python", "name": "trivial", "source": "def grade(sample, item):\n    return 1.0\n"}


@pytest.mark.parametrize("page", ["fifo", "zero"])
def test_a_spoiled_progress_file_names_no_sample(attach_worker: SandboxExecutor, page: str) -> None:
    """Over docker attach the page is a file the grader can replace: what the host
    then reads (nothing within its exec timeout, or 16 zero bytes) names no sample,
    and the chunk is re-run carefully (two limits) instead of the host waiting on it."""
    from rftgrade import build_runtime, load_spec
    from rftgrade.sandbox._docker_channels import _PAGE_SECONDS, PROGRESS_FILE

    spec = load_spec(
        {
            "type": "python",
            "name": f"spoil-{page}",
            "source": SPOILS_ITS_PAGE.replace("PATH", repr(PROGRESS_FILE)),
        }
    )
    # The module's pool, shared: this grader must not close it.
    spoils = Grader(spec, runtime=build_runtime(spec, python=lambda: attach_worker))
    rows = [("a", {"k": 0}), ("a", {"page": page}), ("a", {"k": 1})]
    started = time.monotonic()
    results = spoils.run_batch(rows)
    elapsed = time.monotonic() - started
    assert [r.reward for r in results] == [1.0, 0.0, 1.0], [r.to_dict() for r in results]
    assert results[1].errors.unresponsive_reward_error
    wait = 2.0 + GRACE + (_PAGE_SECONDS if page == "fifo" else 0.0)
    assert 2 * wait - 1.0 < elapsed < 2 * wait + 4.0, elapsed
    # The pool still grades, and nothing but its idle workers is left running.
    assert [r.reward for r in spoils.run_batch([("a", {"k": 2})])] == [1.0]
    deadline = time.monotonic() + 5.0
    while (left := _strays(attach_worker)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not left, f"left running after the test: {left}"


FORGER = r"""
import json, os, struct, sys

def grade(sample, item):
    beyond = item.get("forge")
    if beyond is None:
        return 0.5
    # Worker isolation: the grader shares its worker's process and can find the
    # request it is in and the channel; it answers for the samples before it (0.0)
    # and itself (1.0), `beyond` more past the request's end.
    f = sys._getframe()
    while f is not None and f.f_code.co_name != "_grade_batch":
        f = f.f_back
    if f is not None:
        v = f.f_locals
        # beyond < 0: as many as the request has left (it then looks answered in full).
        n = len(v["rewards"]) + 1 + beyond if beyond >= 0 else len(v["samples"]) - v["first"]
        data = json.dumps(
            {"op": "results", "id": v["request_id"], "start": v["first"],
             "rewards": [0.0] * (n - 1) + [1.0], "durations": [1] * n, "extra": []}
        ).encode()
        try:
            os.write(v["self"].channel.wfd, struct.pack(">I", len(data)) + data)
        except OSError:  # sample isolation: the child has no channel
            pass
    return 1.0
"""


@pytest.mark.parametrize("beyond", [0, 100, -1])
def test_one_reply_per_sample(grader: Grader, beyond: int) -> None:
    """A second reply for a sample, or one for a sample not in flight, never changes
    another sample's reward: the worker is taken for broken and its chunk re-run."""
    forger = Grader({"type": "python", "name": "forger", "source": FORGER}, python=grader.runtime.python)
    rows = [("a", {})] * 3 + [("a", {"forge": beyond})] + [("a", {})] * 60
    results = forger.run_batch(rows)
    others = [r.reward for k, r in enumerate(results) if k != 3]
    assert others == [0.5] * 63, [(k, r.reward) for k, r in enumerate(results) if r.reward != 0.5]
    forged = results[3]
    assert forged.reward == 1.0 or forged.errors.python_grader_runtime_error, forged.to_dict()
    again = forger.run_batch([("a", {})] * 4)
    assert [r.reward for r in again] == [0.5] * 4
