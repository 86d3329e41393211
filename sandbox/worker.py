"""rftgrade sandbox worker: runs one python grader's ``grade(sample, item)`` in a loop.

Stdlib only; never imports rftgrade. Runs inside the sandbox (a Docker container,
a bubblewrap namespace, or a plain process) and talks to the host over a framed
protocol on its original stdout/stdin: each frame is a 4-byte big-endian length
followed by that many bytes: UTF-8 JSON, or (host to worker only, once the
worker has said which marshal version it reads) ``b"M"`` plus :mod:`marshal`
data. Protocol version 5 (v5: the worker is not dumpable and a forked sample gets a fresh /tmp; the frames are v4's):

    host -> {"op": "load", "v": 5, "source": str, "isolation": "worker"|"sample",
             "limits": {...}, "own_pid_namespace": bool}
    worker -> {"op": "loaded", "v": 5, "marshal": int, "ok": true}
              | {"op": "loaded", "v": 5, "ok": false, "error": {...}}
    host -> {"op": "grade", "id": int, "timeout": float, "samples": [...], "items": [...],
             "careful": bool}
            (instead of "items", "items_json": the items as the text of one JSON
            array, bytes under marshal: items the host received as JSON and never read;
            with "item_of": [int, ...], one per sample, the items are the chunk's
            distinct ones and sample i is graded with item item_of[i]; new in v4)
    worker -> {"op": "results", "id": int, "start": int, "rewards": [float|null, ...],
               "durations": [int, ...], "extra": [[offset, {...}], ...]} frames that
              answer the samples in order (every FLUSH_SECONDS and at the end; after
              every sample when "careful")
    host -> {"op": "ping"}  worker -> {"op": "pong"}

A sample is the model's text (a str) or a ``_wire`` dict (see ``expand_sample``).
Durations are nanoseconds. A reward is ``null`` when the call failed; ``extra`` then holds, at the sample's
offset in the frame, ``{"error": "runtime"|"timeout", "error_type": str,
"details": str}``; it also carries ``"stdout"`` (captured, bounded) and
``"recycle"`` (the worker exits after this frame).

Isolation ``worker`` runs ``grade`` in this process (fast). ``sample`` forks a
child per call (a crash, ``os._exit`` or leftover thread dies with the child).
The channel is stdin/stdout, or with ``--connect PATH`` a unix socket the host
listens on (the docker backend bind-mounts it). The reply channel is a private
duplicate of the original stdout (or the socket); fd 1 and 2 are pointed
elsewhere, so nothing the grader prints can forge a frame.
"""

from __future__ import annotations

import _thread
import contextlib
import gc
import io
import json
import marshal
import math
import os
import resource
import select
import signal
import struct
import sys
import time
import traceback
from collections.abc import Iterator
from typing import Any

PROTOCOL_VERSION = 5
MAX_STDOUT = 8 * 1024
MAX_DETAILS = 4 * 1024
FLUSH_SECONDS = 0.05
_HEADER = struct.Struct(">I")
CONNECT_FAILED = 75  # EX_TEMPFAIL: `--connect PATH` could not reach the host


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """Decoding a chunk makes thousands of containers, none of them garbage: the
    cyclic collector would only traverse them again and again while they load."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


class _Channel:
    def __init__(self, rfd: int, wfd: int) -> None:
        self.rfd, self.wfd = rfd, wfd

    def _read_exact(self, n: int) -> bytes:
        chunks, got = [], 0
        while got < n:
            chunk = os.read(self.rfd, n - got)
            if not chunk:
                raise EOFError
            chunks.append(chunk)
            got += len(chunk)
        return b"".join(chunks)

    def recv(self) -> dict[str, Any]:
        (size,) = _HEADER.unpack(self._read_exact(4))
        data = self._read_exact(size)
        # The host (trusted) may send marshal, which loads several times faster
        # than JSON; the worker (untrusted) always answers in JSON.
        with _gc_paused():
            result: dict[str, Any] = marshal.loads(data[1:]) if data[:1] == b"M" else json.loads(data)
        return result

    def send(self, message: dict[str, Any]) -> None:
        self.write(_frame(message))

    def write(self, frames: bytes) -> None:
        view = memoryview(frames)
        while view:
            written = os.write(self.wfd, view)
            view = view[written:]


def _frame(message: dict[str, Any]) -> bytes:
    # A lone surrogate (a grader may print one) becomes "?": the host's parser takes
    # only valid UTF-8 JSON.
    data = json.dumps(message, allow_nan=False, ensure_ascii=False).encode("utf-8", "replace")
    return _HEADER.pack(len(data)) + data


class _BoundedCapture(io.TextIOBase):
    """sys.stdout for the grader: keeps the first MAX_STDOUT characters, counts the rest."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.size = 0
        self.dropped = 0

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        text = str(text)
        room = MAX_STDOUT - self.size
        if room > 0:
            self.parts.append(text[:room])
            self.size += min(len(text), room)
        self.dropped += max(0, len(text) - max(room, 0))
        return len(text)

    def value(self) -> str:
        out = "".join(self.parts)
        if self.dropped:
            out += f"\n... [{self.dropped} more characters of output dropped]"
        return out


def _trim_traceback(exc: BaseException) -> str:
    frames = traceback.extract_tb(exc.__traceback__)
    # Keep only the grader's own frames: the worker's are noise to its author.
    user = [f for f in frames if f.filename == "<grader>"] or frames[-3:]
    lines = traceback.format_list(user[-8:])
    text = "".join(lines) + "".join(traceback.format_exception_only(type(exc), exc))
    return text[-MAX_DETAILS:]


_JSON_HEADS = frozenset('{["-0123456789tfn')
_SPACE = frozenset(" \t\r\n")


# json.loads(text) without its three Python-level calls per sample: the C scanner
# itself. After strip() the text starts with a value and has nothing after it
# but that value, so "all of it scanned" is json.loads's "no extra data".
_scan_once = json.JSONDecoder().scan_once  # type: ignore[attr-defined]  # set in __init__, untyped


def _json_of(text: str) -> Any:
    """``output_json`` parsed from the text exactly as the host's ``Sample`` does, or ``{}``."""
    head = text[:1]
    if head in _JSON_HEADS or (head in _SPACE and text.lstrip()[:1] in _JSON_HEADS):
        stripped = text.strip()
        try:
            value, end = _scan_once(stripped, 0)
        except (StopIteration, ValueError, RecursionError):
            return {}
        if end == len(stripped):
            return value
    return {}


def expand_sample(wire: Any) -> Any:
    """Rebuild OpenAI's sample dict from rftgrade's compact wire form.

    The wire form is the model's text alone (the common case: ``output_json`` is
    parsed from it and ``choices`` is the one assistant message) or a dict marked
    ``_wire``. Mirrors ``rftgrade._sample.Sample.to_python_arg``; a contract test
    pins the two.
    """
    if type(wire) is str:
        text, tools, given = wire, [], {}
    elif isinstance(wire, dict) and "_wire" in wire:
        text, tools, given = wire.get("output_text", ""), wire.get("output_tools", []), wire
    else:
        return wire
    if "choices" in given:
        choices = given["choices"]
    else:
        message: dict[str, Any] = {"role": "assistant", "content": text}
        if tools:
            message["tool_calls"] = tools
        choices = [{"index": 0, "message": message, "finish_reason": "stop"}]
    audio = given.get("output_audio")
    return {
        "choices": choices,
        "output_text": text,
        "output_json": given["output_json"] if "output_json" in given else _json_of(text),
        "output_tools": tools,
        "output_audio": audio if audio is not None else {},
    }


def _check_reward(value: Any) -> tuple[float | None, str | None]:
    if isinstance(value, bool):
        return float(value), None
    if isinstance(value, int):
        try:
            number = float(value)
        except OverflowError:
            return None, "grade() returned an int too large for a float"
    elif isinstance(value, float):
        number = value
    else:
        try:
            import numbers

            if isinstance(value, numbers.Real):
                number = float(value)
            else:
                raise TypeError
        except (TypeError, ValueError, OverflowError):
            text = repr(value) if len(repr(value)) < 200 else repr(value)[:200] + "..."
            return None, f"grade() must return a number, got {type(value).__name__}: {text}"
    if not math.isfinite(number):
        return None, f"grade() returned {number}; rewards must be finite"
    return number, None


class Worker:
    def __init__(self, channel: _Channel) -> None:
        self.channel = channel
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
        self._capture = _BoundedCapture()
        self.timeout = 120.0
        # One watchdog timer per batch, not two setitimer calls per sample: the
        # handler re-arms itself until the sample in grade() is past its time.
        self.in_grade = False
        self.started = 0  # perf_counter_ns() when the current grade() call began
        signal.signal(signal.SIGALRM, self._on_alarm)

    def _on_alarm(self, signum: int, frame: Any) -> None:
        if not self.in_grade:
            signal.setitimer(signal.ITIMER_REAL, self.timeout)
            return
        left = self.timeout - (time.perf_counter_ns() - self.started) / 1e9
        if left > 0.001:
            signal.setitimer(signal.ITIMER_REAL, left)
            return
        self.in_grade = False
        raise TimeoutError(f"grade() ran longer than {self.timeout:g}s")

    def _forked(self) -> None:
        self.spawned_children = True

    def _after_fork(self) -> None:
        self.in_child = True
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
        _apply_limits(self.limits)
        source = message["source"]
        # A real module in sys.modules: pydantic, dataclasses and typing resolve a
        # grader's annotations through it (the seed's Stripe grader needs this).
        import types

        module = types.ModuleType("__grader__")
        sys.modules["__grader__"] = module
        namespace: dict[str, Any] = module.__dict__
        capture = _BoundedCapture()
        old = sys.stdout
        sys.stdout = capture
        try:
            code = compile(source, "<grader>", "exec")
            exec(code, namespace)
        except SyntaxError as exc:
            return {
                "ok": False,
                "error": {
                    "type": "SyntaxError",
                    "line": exc.lineno,
                    "details": f"line {exc.lineno}: {exc.msg}",
                },
            }
        except BaseException as exc:  # the module body itself failed
            return {"ok": False, "error": {"type": type(exc).__name__, "details": _trim_traceback(exc)}}
        finally:
            sys.stdout = old
        grade = namespace.get("grade")
        if not callable(grade):
            return {
                "ok": False,
                "error": {
                    "type": "MissingGrade",
                    "details": "the source defines no callable `grade(sample, item)`",
                },
            }
        code_obj = getattr(grade, "__code__", None)
        if code_obj is not None:
            positional = code_obj.co_argcount
            required = positional - len(grade.__defaults__ or ())
            has_var = bool(code_obj.co_flags & 0x04)
            if (positional < 2 and not has_var) or required > 2:
                return {
                    "ok": False,
                    "error": {
                        "type": "WrongArity",
                        "line": code_obj.co_firstlineno,
                        "details": f"line {code_obj.co_firstlineno}: grade() takes {positional} positional "
                        "argument(s); it must take exactly two: grade(sample, item)",
                    },
                }
        self.grade = grade
        self.base_threads = _thread._count()
        # What /tmp holds once the grader is loaded (its own helper files, if any):
        # everything else a forked sample leaves there is removed after it.
        self.tmp_keep = _tmp_entries() if self.own_ns and self.isolation == "sample" else None
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
                reward, problem = _check_reward(value)
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
            extra = {"error": "runtime", "error_type": type(exc).__name__, "details": _trim_traceback(exc)}
        duration = time.perf_counter_ns() - start
        capture = self._capture
        if capture.size or capture.dropped:
            extra = extra or {}
            extra["stdout"] = capture.value()
            capture = self._capture = _BoundedCapture()
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
        pid = os.fork()
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
                ready, _, _ = select.select([rfd], [], [], left)
                if not ready:
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
            _clean_tmp(self.tmp_keep)
        elapsed = time.perf_counter_ns() - start
        if frame is not None:
            return _checked_child_reply(frame, elapsed)
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
            with _gc_paused():
                items = json.loads(message["items_json"])
        item_of = message.get("item_of")
        shared = SharedItems(items, item_of) if item_of is not None else None
        rewards: list[float | None] = []
        durations: list[int] = []
        extras: list[list[Any]] = []
        first = 0

        def flush(upto: int) -> None:
            nonlocal first, rewards, durations, extras
            self.channel.write(
                _frame(
                    {
                        "op": "results",
                        "id": request_id,
                        "start": first,
                        "rewards": rewards,
                        "durations": durations,
                        "extra": extras,
                    }
                )
            )
            first, rewards, durations, extras = upto, [], [], []

        forked = self.isolation == "sample"
        # After a failed chunk the host re-runs the rest "carefully": a frame per
        # sample, so that a crash or hang is pinned on exactly one sample.
        careful = bool(message.get("careful"))
        old_out, old_err = sys.stdout, sys.stderr
        self.timeout = timeout
        if not forked:
            sys.stdout = sys.stderr = self._capture
            signal.setitimer(signal.ITIMER_REAL, timeout)
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
                    reward, duration, extra = self._grade_here(sample, item)
                    # subprocess.Popen forks in C, past the at-fork hook: ask the kernel too.
                    if self.own_ns and (self.spawned_children or _has_children()):
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
            if not forked:
                signal.setitimer(signal.ITIMER_REAL, 0)
                self.in_grade = False
                sys.stdout, sys.stderr = old_out, old_err
        if rewards:
            flush(len(samples))


def _checked_child_reply(frame: bytes, elapsed: int) -> dict[str, Any]:
    """A forked sample's reply, rebuilt from checked fields: the child ran the
    sample's code and may have written anything into its pipe."""
    try:
        with _gc_paused():
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


class SharedItems:
    """Items shared by several samples of a chunk (a GRPO group's prompt), taken in
    turn: each call gets an item equal to the one the host sent, even when an
    earlier call changed it (``item.pop(...)``); a changed one is copied afresh."""

    def __init__(self, items: list[Any], item_of: list[int]) -> None:
        self.pristine = items
        self.item_of = item_of
        self.handed: list[Any] = [None] * len(items)

    def take(self, index: int) -> Any:
        if index >= len(self.item_of) or not 0 <= self.item_of[index] < len(self.pristine):
            return {}
        k = self.item_of[index]
        item = self.handed[k]
        if item is not None:
            try:
                # Checked before every use, not after: a grader may keep a reference
                # and change the item while grading a later sample.
                if item == self.pristine[k]:
                    return item
            except Exception:  # the grader put something into it that cannot compare
                pass
        item = self.handed[k] = marshal.loads(marshal.dumps(self.pristine[k]))
        return item


TMP = "/tmp"


def _tmp_entries() -> set[str]:
    try:
        return set(os.listdir(TMP))
    except OSError:
        return set()


def _clean_tmp(keep: set[str]) -> None:
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


def _has_children() -> bool:
    """Whether any process is this one's child (or an orphan it adopted as its
    sandbox's init); one syscall."""
    try:
        os.waitpid(-1, os.WNOHANG)
    except ChildProcessError:
        return False
    return True


def _apply_limits(limits: dict[str, Any]) -> None:
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


def _connect(path: str) -> int:
    """The host's unix socket, bind-mounted into the sandbox (the docker backend's
    direct channel: frames skip the engine's attach copy). Exits with
    CONNECT_FAILED when the socket cannot be reached, so the host can fall back."""
    import socket

    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(path)
    except OSError as exc:
        os.write(2, f"rftgrade worker: cannot connect to {path}: {exc}\n".encode())
        os._exit(CONNECT_FAILED)
    return sock.detach()


def _not_dumpable() -> None:
    """prctl(PR_SET_DUMPABLE, 0): a forked sample (same uid) can then neither open
    this process's /proc/<pid>/mem or /proc/<pid>/fd/N (the channel), nor ptrace it,
    nor take its descriptors with pidfd_getfd or read it with process_vm_readv: all
    of these need the target dumpable when the caller has no CAP_SYS_PTRACE.
    Children inherit the flag; a program a sample execs is dumpable again, but it is
    the sample's own, not the worker."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(4, 0, 0, 0, 0) != 0:  # PR_SET_DUMPABLE
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_DUMPABLE, 0) failed")


def main() -> None:
    _not_dumpable()
    # Keep a private copy of the protocol channel, then point fd 0/1/2 away from
    # it: a grader that writes to fd 1 (print, os.write, a C library) can neither
    # forge a frame nor block the channel.
    args = sys.argv[1:]
    if args[:1] == ["--connect"] and len(args) == 2:
        rfd = _connect(args[1])
        wfd = os.dup(rfd)
    else:
        rfd = os.dup(0)
        wfd = os.dup(1)
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    for fd in (rfd, wfd):
        os.set_inheritable(fd, False)
    sys.stdin = open(os.devnull)
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    limits = json.loads(os.environ.get("RFTGRADE_LIMITS", "{}") or "{}")
    _apply_limits(limits)
    Worker(_Channel(rfd, wfd)).serve()


if __name__ == "__main__":
    main()
