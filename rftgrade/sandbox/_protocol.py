"""The host's side of the sandbox wire: what it sends a worker and how it reads replies.

One place for the protocol the stdlib worker (``sandbox/worker_wire.py`` and the
modules beside it) speaks: its version, the ``load`` and ``grade`` messages
(with a chunk's items shared, see :func:`share_items`), and the strict reading of
``loaded`` and ``results`` frames into :class:`PythonOutcome`. The worker is
untrusted: every field of a reply is checked here, and a bad field fails its
sample alone (or, when it breaks the frame's framing, the worker). Framing
itself (lengths, JSON, marshal) is :mod:`rftgrade.sandbox._channel`'s.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rftgrade._executors import PythonCalls, PythonOutcome
from rftgrade._rawitem import RawItem
from rftgrade.sandbox._channel import ChannelClosed

__all__ = [
    "PROGRESS_SECONDS",
    "PROTOCOL_VERSION",
    "GraderLoadError",
    "LoadFailure",
    "OutOfStep",
    "Results",
    "apply_results",
    "grade_message",
    "load_message",
    "parse_loaded",
    "parse_results",
    "share_items",
]

PROTOCOL_VERSION = 6
"""v6: a ``results`` frame may carry ``running`` (the sample graded now) and no
rewards; ``sandbox/worker_wire.py`` holds the worker's copy, pinned to this one
by ``tests/sandbox/test_protocol.py``."""
PROGRESS_SECONDS = 1.0
"""A sample running this long gets a progress frame naming it (the worker's
``PROGRESS_SECONDS``, pinned to this one likewise)."""

# What the host keeps of a reply, whatever the worker sent (it cuts to the same).
MAX_STDOUT = 8 * 1024 + 100
MAX_DETAILS = 4 * 1024 + 100
MAX_DURATION_NS = 10**15  # about 11 days: beyond any time limit
MAX_REWARD = 1e300  # past this an int is not a float (and the worker sends floats)


@dataclass
class LoadFailure:
    kind: str  # "runtime" (the grader's fault) or "server" (the sandbox's)
    error_type: str
    details: str

    def outcome(self) -> PythonOutcome:
        return PythonOutcome(error=self.kind, error_type=self.error_type, details=self.details)  # type: ignore[arg-type]


def load_message(
    source: str, isolation: str, limits: dict[str, Any], own_pid_namespace: bool
) -> dict[str, Any]:
    """The first message a worker gets: the grader's source and how to run it."""
    return {
        "op": "load",
        "v": PROTOCOL_VERSION,
        "source": source,
        "isolation": isolation,
        "limits": limits,
        "own_pid_namespace": own_pid_namespace,
    }


def parse_loaded(reply: dict[str, Any], backend: str) -> int | None:
    """Check a ``loaded`` reply: the marshal version the worker reads (``None``: JSON
    only). Raises :class:`ChannelClosed` for a worker of another protocol version and
    :class:`GraderLoadError` when the grader itself failed to load."""
    if reply.get("v") != PROTOCOL_VERSION:
        raise ChannelClosed(
            f"the sandbox worker speaks protocol v{reply.get('v')}, this rftgrade needs "
            f"v{PROTOCOL_VERSION}: rebuild the sandbox (`rftgrade sandbox build --backend {backend}`)"
        )
    if not reply.get("ok"):
        error = reply.get("error")
        error = error if isinstance(error, dict) else {}
        raise GraderLoadError(
            LoadFailure(
                "runtime",
                _text(error.get("type"), 200) or "LoadError",
                f"the grader failed to load: {_text(error.get('details'), MAX_DETAILS)}".strip(),
            )
        )
    version = reply.get("marshal")
    return version if type(version) is int and version >= 2 else None


class GraderLoadError(Exception):
    def __init__(self, failure: LoadFailure) -> None:
        super().__init__(failure.details)
        self.failure = failure


def grade_message(
    request_id: int,
    limit: float,
    calls: Sequence[Any],
    indices: list[int],
    careful: bool,
    marshal_version: int | None,
) -> dict[str, Any]:
    """A ``grade`` request for the calls at ``indices`` (a chunk of a batch)."""
    first, last = indices[0], indices[-1]
    items: Sequence[Any]
    if isinstance(calls, PythonCalls) and last - first + 1 == len(indices):  # a run of calls
        samples, items = calls.samples[first : last + 1], calls.items[first : last + 1]
    else:
        samples, items = [calls[i].sample for i in indices], [calls[i].item for i in indices]
    message: dict[str, Any] = {
        "op": "grade",
        "id": request_id,
        "timeout": limit,
        "samples": samples,
        "careful": careful,
    }
    kinds = set(map(type, items))
    if RawItem in kinds and kinds != {RawItem}:
        items = [i.parse() if type(i) is RawItem else i for i in items]
        kinds = set(map(type, items))
    items = share_items(items, message)
    if kinds == {RawItem}:
        # Items still in the JSON text they arrived in go as one JSON array: the
        # worker parses it in one call, the host never builds them.
        text = b"[" + b",".join([item.data for item in items]) + b"]"
        message["items_json"] = text if marshal_version is not None else text.decode()
    else:
        message["items"] = items
    return message


def share_items(items: Sequence[Any], message: dict[str, Any]) -> Sequence[Any]:
    """A chunk's distinct items; ``message["item_of"]`` then maps each sample to its item.

    GRPO grades a group of samples (16 is common) against one prompt's item: sent
    once per chunk, the worker parses (and the host encodes) a sixteenth of them.
    Items are the same when they are the same object or the same JSON text. The
    worker still hands every call an item no earlier call has changed.
    """
    # Built with C-level maps and zips: this runs for every chunk of every batch.
    ids = list(map(id, items))
    objects = dict(zip(ids, items, strict=True))  # each item object once
    if type(items[0]) is RawItem:
        if len(objects) == len(items):
            values = list(map(_data, items))
            if not any(map(operator.eq, values[:-1], values[1:])):
                # Trainers put a prompt's samples next to each other (TRL, verl and
                # OpenRLHF all do): with no neighbours alike, keying every text is not
                # worth its cost.
                return items
        # One copy of the text per object, not per row: a `groups` body gives all of
        # a group's rows one RawItem, which may be big.
        text = {key: bytes(item.data) for key, item in objects.items()}
        keys: list[Any] = list(map(text.__getitem__, ids))
    else:
        # One object anywhere in the chunk, not only next to itself: marshal would
        # hand the worker one shared object, which a grader could change for the rest.
        if len(objects) == len(items):
            return items
        keys = ids
    by_key = dict(zip(keys, items, strict=True))  # one item per distinct key, in first-seen order
    if len(by_key) == len(items):
        return items
    position = {key: index for index, key in enumerate(by_key)}
    message["item_of"] = list(map(position.__getitem__, keys))
    return list(by_key.values())


@dataclass
class Results:
    """One ``results`` frame, split into its columns (still unchecked per sample)."""

    rewards: list[Any]
    durations: list[Any]
    extras: dict[int, dict[str, Any]]
    running: int | None
    """The request's index of the sample the worker was grading when it wrote the
    frame (v6: a sample that has run a second), else ``None``."""


class OutOfStep(ChannelClosed):
    """A ``results`` frame that breaks one reply per sample: the worker is broken."""

    def __init__(self, why: str, *, second_reply: bool, stale: bool, request: Any = None) -> None:
        super().__init__(why)
        self.request = request
        """The request id the frame named."""
        self.second_reply = second_reply
        """It answers again a sample this request already had a reply for."""
        self.stale = stale
        """It names another request (one answered before, or one never sent)."""


def parse_results(
    frame: dict[str, Any], request_id: int, answered: int, size: int, careful: bool = False
) -> Results:
    """Check a ``results`` frame for a request of ``size`` samples, ``answered`` of
    them answered so far: it must answer the next samples, no more than are in
    flight (one at most when ``careful``: the worker then writes a frame per sample),
    and a progress mark must name the sample after them. Anything else raises
    :class:`OutOfStep`: the pool then trusts nothing more from that worker."""
    rewards, durations = frame.get("rewards"), frame.get("durations")
    running, start, rid = frame.get("running"), frame.get("start"), frame.get("id")
    if (
        frame.get("op") != "results"
        or rid != request_id
        or start != answered
        or type(rewards) is not list
        or type(durations) is not list
        or len(rewards) != len(durations)
        or len(rewards) > (1 if careful else size - answered)
        or (running is not None and running != answered + len(rewards))
        or not (rewards or running is not None)
    ):
        raise OutOfStep(
            f"reply out of step: request {str(rid)[:40]}, start {str(start)[:40]}, "
            f"{len(rewards) if type(rewards) is list else '?'} replies "
            f"(expected request {request_id}, start {answered}, at most {size - answered})",
            second_reply=rid == request_id and type(start) is int and 0 <= start < answered,
            stale=rid != request_id,
            request=rid,
        )
    extras: dict[int, dict[str, Any]] = {}
    for pair in frame.get("extra") or ():
        if isinstance(pair, list) and len(pair) == 2 and type(pair[0]) is int and isinstance(pair[1], dict):
            extras[pair[0]] = pair[1]
    return Results(rewards, durations, extras, running if type(running) is int else None)


def apply_results(
    results: Results, indices: list[int], answered: int, outcomes: list[PythonOutcome | None]
) -> bool:
    """Write a checked frame's outcomes for ``indices[answered:]``; whether the worker
    said it exits after this frame (``recycle``)."""
    recycle = False
    rewards, durations, extras = results.rewards, results.durations, results.extras
    for k in range(len(rewards)):
        extra = extras.get(k) if extras else None
        reward, duration = rewards[k], durations[k]
        if (
            extra is None
            and type(reward) is float
            and type(duration) is int
            and reward - reward == 0.0
            and 0 <= duration <= MAX_DURATION_NS
        ):
            # The common case, inline: a finite reward (x - x is nan for inf and nan).
            outcomes[indices[answered + k]] = _new_outcome(
                PythonOutcome, (reward, None, None, None, "", duration / 1e9)
            )
            continue
        outcomes[indices[answered + k]] = outcome(reward, duration, extra)
        if extra is not None and extra.get("recycle") is not None:
            recycle = True
    return recycle


_data = operator.attrgetter("data")
_new_outcome = tuple.__new__  # skips NamedTuple's keyword handling: one outcome per sample


def _text(value: Any, limit: int) -> str:
    """A string field of a reply, cut here too: the worker is untrusted."""
    if type(value) is not str:
        return ""
    if len(value) <= limit:
        return value
    return value[:limit] + f"\n... [{len(value) - limit} more characters dropped by the host]"


def _invalid(why: str, seconds: float = 0.0) -> PythonOutcome:
    return PythonOutcome(
        error="runtime",
        error_type="InvalidReply",
        details=f"the sandbox sent an invalid reply for this sample: {why}",
        duration=seconds,
    )


def outcome(reward: Any, duration: Any, extra: dict[str, Any] | None) -> PythonOutcome:
    """One sample's reply, checked field by field; a bad one fails that sample alone."""
    if type(duration) is not int or not 0 <= duration <= MAX_DURATION_NS:
        return _invalid(f"duration {str(duration)[:40]!r} is not a count of nanoseconds")
    seconds = duration / 1e9  # the worker reports nanoseconds
    if extra is None and type(reward) is float and math.isfinite(reward):  # the common case
        return _new_outcome(PythonOutcome, (reward, None, None, None, "", seconds))
    extra = extra or {}
    stdout = _text(extra.get("stdout"), MAX_STDOUT)
    kind = extra.get("error")
    if kind is None:
        if reward is None or type(reward) not in (float, int) or abs(reward) > MAX_REWARD:
            return _invalid(f"reward {str(reward)[:40]!r} is not a finite number", seconds)
        reward = float(reward)
        if not math.isfinite(reward):
            return _invalid(f"reward {reward!r} is not finite", seconds)
        return PythonOutcome(reward=reward, stdout=stdout, duration=seconds)
    return PythonOutcome(
        error="timeout" if kind == "timeout" else "runtime",
        error_type=_text(extra.get("error_type"), 200) or "Error",
        details=_text(extra.get("details"), MAX_DETAILS),
        stdout=stdout,
        duration=seconds,
    )
