"""rftgrade sandbox worker: runs one python grader's ``grade(sample, item)`` in a loop.

Stdlib only; never imports rftgrade. Runs inside the sandbox (a Docker container,
a bubblewrap namespace, or a plain process) and talks to the host over the framed
protocol described in ``_rftgrade_wire.py`` (the modules named ``_rftgrade_*.py``
beside this file ship with it into every sandbox).

Isolation ``worker`` runs ``grade`` in this process (fast). ``sample`` forks a
child per call (a crash, ``os._exit`` or leftover thread dies with the child).
The channel is stdin/stdout, or with ``--connect PATH`` a unix socket the host
listens on (the docker backend bind-mounts it). The reply channel is a private
duplicate of the original stdout (or the socket); fd 1 and 2 are pointed
elsewhere, so nothing the grader prints can forge a frame.
"""

from __future__ import annotations

import _thread
import gc
import json
import marshal
import os
import select
import signal
import sys
import time
from typing import Any

# `python -I` leaves this file's directory off sys.path: the worker's own modules
# are found there for the imports below only (a grader never sees the directory).
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.append(_HERE)
try:
    from _rftgrade_os import (
        MAX_CHILD_REPLY,
        apply_limits,
        checked_child_reply,
        clean_tmp,
        has_children,
        tmp_entries,
    )
    from _rftgrade_values import (
        BoundedCapture,
        SharedItems,
        check_reward,
        expand_sample,
        load_grader,
        trim_traceback,
    )
    from _rftgrade_wire import (
        _HEADER,
        FLUSH_SECONDS,
        PROGRESS_SECONDS,
        PROTOCOL_VERSION,
        Channel,
        ProgressPage,
        connect,
        encode,
        gc_paused,
        not_dumpable,
        progress_file,
    )
finally:
    sys.path.remove(_HERE)

__all__ = ["PROTOCOL_VERSION", "SharedItems", "Worker", "expand_sample", "main"]


class Worker:
    def __init__(self, channel: Channel, page: int | None = None) -> None:
        self.channel = channel
        self.page_fd = page  # the host's progress page, mapped at load in worker isolation
        self.page: ProgressPage | None = None
        self.grade: Any = None
        self.isolation = "worker"
        self.limits: dict[str, Any] = {}
        self.own_ns = False
        self.base_threads = _thread._count()
        # A process the grader forks must never speak on the channel: it loses
        # the channel at fork and exits as soon as grade() returns in it.
        self.in_child = False
        os.register_at_fork(after_in_child=self._after_fork, after_in_parent=self._forked)
        self.spawned_children = False
        self.tmp_keep: set[str] | None = None
        self._capture = BoundedCapture()
        self.timeout = 120.0
        # One watchdog timer per batch, not two setitimer calls per sample: the
        # handler re-arms itself until the sample in grade() is past its time.
        self.in_grade = False
        self.started = 0  # perf_counter_ns() when the current grade() call began
        # Writes a progress frame (what is graded so far, and the sample now running)
        # once per slow sample: if it then hangs past the host's patience, the host
        # knows the culprit and need not re-run its chunk sample by sample.
        self.progress: Any = None
        self.progress_for = -1  # `started` of the sample whose progress frame was sent
        signal.signal(signal.SIGALRM, self._on_alarm)

    def _on_alarm(self, signum: int, frame: Any) -> None:
        if not self.in_grade:
            signal.setitimer(signal.ITIMER_REAL, min(self.timeout, PROGRESS_SECONDS))
            return
        elapsed = (time.perf_counter_ns() - self.started) / 1e9
        left = self.timeout - elapsed
        if left > 0.001:
            if elapsed < PROGRESS_SECONDS:
                signal.setitimer(signal.ITIMER_REAL, min(left, PROGRESS_SECONDS - elapsed))
                return
            self._send_progress()
            signal.setitimer(signal.ITIMER_REAL, left)
            return
        self.in_grade = False
        raise TimeoutError(f"grade() ran longer than {self.timeout:g}s")

    def _send_progress(self) -> None:
        if self.progress is not None and self.progress_for != self.started:
            self.progress_for = self.started
            self.progress()

    def _forked(self) -> None:
        self.spawned_children = True

    def _after_fork(self) -> None:
        self.in_child = True
        self.progress = None  # the channel is the worker's, never a child's
        for fd in (self.channel.rfd, self.channel.wfd):
            try:
                os.close(fd)
            except OSError:
                pass

    # -- load ---------------------------------------------------------------
    def load(self, message: dict[str, Any]) -> dict[str, Any]:
        self.isolation = message.get("isolation", "worker")
        self.limits = message.get("limits", {})
        self.own_ns = bool(message.get("own_pid_namespace"))
        if self.page_fd is not None:
            fd, self.page_fd = self.page_fd, None
            try:
                # A forked sample could write the page: it is the worker's alone.
                self.page = ProgressPage(fd) if self.isolation == "worker" else None
            except (OSError, ValueError):
                self.page = None
            if self.page is None:
                try:
                    os.close(fd)
                except OSError:
                    pass
        apply_limits(self.limits)
        grade, error = load_grader(message["source"])
        if error is not None:
            return {"ok": False, "error": error}
        self.grade = grade
        self.base_threads = _thread._count()
        # What /tmp holds once the grader is loaded (its own helper files, if any):
        # everything else a forked sample leaves there is removed after it.
        self.tmp_keep = tmp_entries() if self.own_ns and self.isolation == "sample" else None
        # What the grader imported (numpy, pandas, ...) lives as long as the worker:
        # keep it out of every later collection's traversal.
        gc.collect()
        gc.freeze()
        return {"ok": True}

    # -- calls in this process ----------------------------------------------
    def _grade_here(self, sample: Any, item: Any) -> tuple[float | None, int, dict[str, Any] | None]:
        """``grade(sample, item)`` under the armed watchdog: (reward, nanoseconds, failure or stdout)."""
        extra: dict[str, Any] | None = None
        reward: float | None = None
        start = self.started = time.perf_counter_ns()
        try:
            self.in_grade = True
            value = self.grade(sample, item)
            self.in_grade = False
            if self.in_child:  # grade() forked and this is the copy: it must not reply
                os._exit(0)
            if type(value) is float and value - value == 0.0:  # finite float: the common case
                reward = value
            else:
                reward, problem = check_reward(value)
                if problem is not None:
                    extra = {"error": "runtime", "error_type": "InvalidReturn", "details": problem}
        except TimeoutError as exc:
            self.in_grade = False
            if self.in_child:
                os._exit(1)
            extra = {"error": "timeout", "error_type": "TimeoutError", "details": str(exc)}
        except BaseException as exc:  # SystemExit, KeyboardInterrupt included: all are the grader's
            self.in_grade = False
            if self.in_child:
                os._exit(1)
            extra = {"error": "runtime", "error_type": type(exc).__name__, "details": trim_traceback(exc)}
        duration = time.perf_counter_ns() - start
        capture = self._capture
        if capture.size or capture.dropped:
            extra = extra or {}
            extra["stdout"] = capture.value()
            capture = self._capture = BoundedCapture()
        if sys.stdout is not capture or sys.stderr is not capture:  # new capture, or the grader swapped them
            sys.stdout = sys.stderr = capture
        return (None if extra and "error" in extra else reward), duration, extra

    def _call(self, sample: Any, item: Any, timeout: float) -> dict[str, Any]:
        """One call with its own timer and capture, as one result dict (the forked path)."""
        old_out, old_err = sys.stdout, sys.stderr
        sys.stdout = sys.stderr = self._capture
        self.timeout = timeout
        signal.setitimer(signal.ITIMER_REAL, timeout)
        try:
            reward, duration, extra = self._grade_here(sample, item)
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            sys.stdout, sys.stderr = old_out, old_err
        result: dict[str, Any] = dict(extra or {})
        if reward is not None:
            result["reward"] = reward
        result["duration_ns"] = duration
        return result

    # -- one call, in a forked child ------------------------------------------
    def _call_forked(self, sample: Any, item: Any, timeout: float) -> dict[str, Any]:
        start = time.perf_counter_ns()
        rfd, wfd = os.pipe()
        try:
            pid = os.fork()
        except OSError as exc:  # out of processes (a pids or RLIMIT_NPROC limit): this sample's failure
            os.close(rfd)
            os.close(wfd)
            self._sweep()  # what an earlier sample left holding the processes, if anything
            return {
                "error": "runtime",
                "error_type": "ForkFailed",
                "details": f"could not start the grading process: {exc}",
                "duration_ns": time.perf_counter_ns() - start,
            }
        if pid == 0:  # child (the at-fork hook already closed the channel)
            try:
                self.in_child = False  # this copy is the one that grades
                os.close(rfd)
                os.setsid()
                result = self._call(sample, item, timeout)
                data = json.dumps(result, allow_nan=False).encode()
                os.write(wfd, _HEADER.pack(len(data)))
                view = memoryview(data)
                while view:
                    view = view[os.write(wfd, view) :]
            finally:
                os._exit(0)
        os.close(wfd)
        deadline = time.monotonic() + timeout + 1.0
        buffer = b""
        need = 4
        frame: bytes | None = None
        try:
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                slow = time.perf_counter_ns() - start >= PROGRESS_SECONDS * 1e9
                ready, _, _ = select.select([rfd], [], [], left if slow else min(left, PROGRESS_SECONDS))
                if not ready:
                    if time.monotonic() < deadline:
                        self.started = start
                        self._send_progress()
                        continue
                    break
                chunk = os.read(rfd, 65536)
                if not chunk:
                    break
                buffer += chunk
                if len(buffer) >= 4 and need == 4:
                    need = 4 + _HEADER.unpack(buffer[:4])[0]
                    if need > MAX_CHILD_REPLY:
                        break  # not a reply this worker wrote: the sample fails below
                if len(buffer) >= need > 4:
                    frame = buffer[4:need]
                    break
        finally:
            os.close(rfd)
        # The child and anything it started die now; the reply never waits for them.
        for target in (-pid, pid):
            try:
                os.kill(target, signal.SIGKILL)
            except OSError:
                pass
        status = 0
        try:
            _, status = os.waitpid(pid, 0)
        except ChildProcessError:
            pass
        self._sweep()
        if self.tmp_keep is not None:
            clean_tmp(self.tmp_keep)
        elapsed = time.perf_counter_ns() - start
        if frame is not None:
            reply: dict[str, Any] = checked_child_reply(frame, elapsed)
            return reply
        if need > MAX_CHILD_REPLY:
            return {
                "error": "runtime",
                "error_type": "InvalidReply",
                "details": f"the grading process sent a {need}-byte reply",
                "duration_ns": elapsed,
            }
        if time.monotonic() >= deadline:
            return {
                "error": "timeout",
                "error_type": "TimeoutError",
                "details": f"grade() ran longer than {timeout:g}s and was killed",
                "duration_ns": elapsed,
            }
        how = (
            f"signal {os.WTERMSIG(status)}"
            if os.WIFSIGNALED(status)
            else f"exit code {os.WEXITSTATUS(status)}"
        )
        return {
            "error": "runtime",
            "error_type": "ProcessDied",
            "details": f"the grading process died before returning ({how})",
            "duration_ns": elapsed,
        }

    def _sweep(self) -> None:
        """Kill every other process of this sandbox and reap them all before the next
        sample starts. In its own pid namespace the worker is init (pid 1), so every
        orphan is its child: the loop ends when none is left, and a process forked
        while the first kill went round is killed by the next."""
        if not self.own_ns:
            while True:  # the process backend: reap what has exited, kill nothing
                try:
                    pid, _ = os.waitpid(-1, os.WNOHANG)
                except ChildProcessError:
                    return
                if pid == 0:
                    return
        while True:
            try:
                os.kill(-1, signal.SIGKILL)  # all our uid can signal but ourselves
            except OSError:
                pass
            try:
                os.waitpid(-1, 0)
            except ChildProcessError:
                return

    # -- the request loop ------------------------------------------------------
    def serve(self) -> None:
        while True:
            try:
                message = self.channel.recv()
            except EOFError:
                return
            op = message.get("op")
            if op == "ping":
                self.channel.send({"op": "pong", "v": PROTOCOL_VERSION})
            elif op == "load":
                reply = self.load(message)
                self.channel.send(
                    {"op": "loaded", "v": PROTOCOL_VERSION, "marshal": marshal.version, **reply}
                )
            elif op == "grade":
                if self.grade is None:
                    self.channel.send({"op": "error", "id": message.get("id"), "details": "no grader loaded"})
                    continue
                self._grade_batch(message)
            elif op == "exit":
                return

    def _grade_batch(self, message: dict[str, Any]) -> None:
        # Replies are buffered and written together (one write per chunk, or every
        # FLUSH_SECONDS for slow graders): a frame per sample per syscall would cost
        # more than grading. If the worker dies mid-chunk the host re-runs the
        # unanswered rest "carefully" (a frame per sample), so only the guilty
        # sample is flagged.
        timeout = float(message.get("timeout") or self.limits.get("timeout") or 120.0)
        request_id = message.get("id")
        samples = message.get("samples") or []
        items = message.get("items") or []
        if message.get("items_json") is not None:
            with gc_paused():
                items = json.loads(message["items_json"])
        item_of = message.get("item_of")
        shared = SharedItems(items, item_of) if item_of is not None else None
        rewards: list[float | None] = []
        durations: list[int] = []
        extras: list[list[Any]] = []
        first = 0

        def flush(upto: int, running: int | None = None) -> None:
            nonlocal first, rewards, durations, extras
            message = {
                "op": "results",
                "id": request_id,
                "start": first,
                "rewards": rewards,
                "durations": durations,
                "extra": extras,
            }
            if running is not None:
                message["running"] = running
            self.channel.write(encode(message))
            first, rewards, durations, extras = upto, [], [], []

        def progress() -> None:
            running = first + len(rewards)
            flush(running, running)

        self.progress = progress
        slots = None
        if self.page is not None and type(request_id) is int:
            self.page.begin(request_id)
            slots = self.page.slots

        forked = self.isolation == "sample"
        # After a failed chunk the host re-runs the rest "carefully": a frame per
        # sample, so that a crash or hang is pinned on exactly one sample.
        careful = bool(message.get("careful"))
        old_out, old_err = sys.stdout, sys.stderr
        self.timeout = timeout
        if not forked:
            sys.stdout = sys.stderr = self._capture
            signal.setitimer(signal.ITIMER_REAL, min(timeout, PROGRESS_SECONDS))
        last_flush = time.perf_counter_ns()
        flush_ns = int(FLUSH_SECONDS * 1e9)
        base_threads = self.base_threads
        count_threads = _thread._count
        n_items = len(items)
        try:
            for index, wire in enumerate(samples):
                sample = expand_sample(wire)
                item = shared.take(index) if shared is not None else (items[index] if index < n_items else {})
                if forked:
                    result = self._call_forked(sample, item, timeout)
                    reward = result.pop("reward", None)
                    duration = int(result.pop("duration_ns", 0))
                    extra: dict[str, Any] | None = result or None
                else:
                    if slots is not None:
                        slots[1] = index
                    reward, duration, extra = self._grade_here(sample, item)
                    # subprocess.Popen forks in C, past the at-fork hook: ask the kernel too.
                    if self.own_ns and (self.spawned_children or has_children()):
                        self._sweep()
                        self.spawned_children = False
                dirty = not forked and count_threads() > base_threads
                if dirty:
                    # A thread the grader left running would share the next sample's process.
                    extra = extra or {}
                    extra["recycle"] = "the grader left a thread running"
                rewards.append(reward)
                durations.append(duration)
                if extra:
                    extras.append([index - first, extra])
                if dirty:
                    flush(index + 1)
                    os._exit(3)
                now = time.perf_counter_ns()
                if careful or now - last_flush > flush_ns:
                    flush(index + 1)
                    last_flush = now
        finally:
            self.progress = None
            if not forked:
                signal.setitimer(signal.ITIMER_REAL, 0)
                self.in_grade = False
                sys.stdout, sys.stderr = old_out, old_err
        if rewards:
            flush(len(samples))


def main() -> None:
    not_dumpable()
    # Keep a private copy of the protocol channel, then point fd 0/1/2 away from
    # it: a grader that writes to fd 1 (print, os.write, a C library) can neither
    # forge a frame nor block the channel.
    args = sys.argv[1:]
    page: int | None = None
    if args[:1] == ["--connect"] and len(args) >= 2:
        rfd, page = connect(args[1], "--progress" in args[2:])
        wfd = os.dup(rfd)
    else:
        rfd = os.dup(0)
        wfd = os.dup(1)
        if args[:1] == ["--progress-fd"] and len(args) == 2:
            page = int(args[1])
        elif args[:1] == ["--progress-file"] and len(args) == 2:
            page = progress_file(args[1])
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    for fd in (rfd, wfd) if page is None else (rfd, wfd, page):
        os.set_inheritable(fd, False)
    sys.stdin = open(os.devnull)
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    limits = json.loads(os.environ.get("RFTGRADE_LIMITS", "{}") or "{}")
    apply_limits(limits)
    Worker(Channel(rfd, wfd), page).serve()


if __name__ == "__main__":
    main()
