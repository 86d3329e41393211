"""What a pool does when a worker breaks: which sample to blame, and what to run again.

A worker that falls silent (hangs, dies) or whose replies break the protocol is
discarded by :class:`rftgrade.sandbox._pool.WorkerPool`; these functions decide
what that costs the chunk it was grading: the sample to flag, the outcomes to
withdraw, and the chunks to queue again (a careful re-run answers a sample at a
time, so that only the guilty sample is flagged). ``slot`` is the pool's worker
slot (its ``last`` answered request and its ``channel``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from rftgrade._executors import PythonOutcome
from rftgrade.sandbox._chunks import Chunk
from rftgrade.sandbox._protocol import PROGRESS_SECONDS, OutOfStep

__all__ = ["PoolStats", "after_out_of_step", "after_silence", "timed_out"]


@dataclass
class PoolStats:
    """A pool's counters (``snapshot()``, ``/metrics``)."""

    spawned: int = 0
    recycled: int = 0
    crashed: int = 0
    timeouts: int = 0
    samples: int = 0
    started_ahead: int = 0
    chunks: int = 0
    """Chunks batches were cut into (re-runs of a failed chunk's rest not counted)."""
    extra: dict[str, Any] = field(default_factory=dict)


def after_out_of_step(
    stats: PoolStats,
    slot: Any,
    chunk: Chunk,
    answered: int,
    exc: OutOfStep,
    outcomes: list[PythonOutcome | None],
) -> list[Chunk]:
    """A frame broke the one-reply-per-sample rule (a second reply for a sample,
    a reply for one not in flight, another request's): the worker's stream can no
    longer be trusted (the caller discards it). Every outcome it gave in this
    chunk is withdrawn and the chunk re-run carefully; in a careful run a second
    reply for the sample just answered flags that sample, any other break the one
    in flight (it is the only one grading while frames come one per sample)."""
    stats.crashed += 1
    indices = chunk.indices
    again: list[Chunk] = []
    if exc.stale and slot.last is not None and slot.last[0] == exc.request and slot.last[2] is outcomes:
        # A late reply for the request answered before this one (same batch): a
        # forged frame answered that one in full; withdraw it and re-run it too.
        for i in slot.last[1].indices:
            outcomes[i] = None
        again.append(Chunk(slot.last[1].indices, careful=True))
    slot.last = None
    if not chunk.careful:
        for i in indices[:answered]:
            outcomes[i] = None
        return [*again, Chunk(indices, careful=True)]
    if exc.stale and answered == 0 and not chunk.retried:
        # Most likely the rest of the request before this one on the same worker
        # (answered in full by a forged frame): nothing of this chunk is to blame yet.
        return [*again, Chunk(indices, careful=True, retried=True)]
    culprit = answered - 1 if exc.second_reply else answered
    if culprit >= len(indices):
        return []
    outcomes[indices[culprit]] = PythonOutcome(
        error="runtime",
        error_type="InvalidReply",
        details=f"the worker's replies broke the protocol while it graded this sample: {exc}",
    )
    rest = indices[culprit + 1 :]
    return [*again, Chunk(rest, careful=True)] if rest else again


def after_silence(
    stats: PoolStats,
    slot: Any,
    chunk: Chunk,
    answered: int,
    exc: Exception,
    outcomes: list[PythonOutcome | None],
    limit: float,
    started: float,
    named: int | None = None,
) -> list[Chunk]:
    """A worker hung or died after ``answered`` replies (the caller discards it):
    flag the culprit, re-queue the rest. ``named``: the request's index of the sample
    the worker said (progress frame or page) it was grading when it fell silent: that
    one hung, it is flagged now and the others re-run as they were (a hang costs its
    batch one time limit, not two)."""
    if named is not None:
        # Those before it were graded but their replies never sent: run them again too.
        index = chunk.indices[named]
        rest = chunk.indices[answered:named] + chunk.indices[named + 1 :]
        stats.timeouts += 1
        outcomes[index] = timed_out(
            limit, time.perf_counter() - started + (PROGRESS_SECONDS if named == answered else 0.0)
        )
        return [Chunk(rest, careful=chunk.careful)] if rest else []
    rest = chunk.indices[answered:]
    if not chunk.careful:
        # Replies come in batches: any unanswered sample may be the culprit.
        # Re-run them on a fresh worker that answers after each one.
        return [Chunk(rest, careful=True)]
    index = rest[0]
    if isinstance(exc, TimeoutError):
        stats.timeouts += 1
        outcomes[index] = timed_out(limit, time.perf_counter() - started)
    else:
        stats.crashed += 1
        outcomes[index] = PythonOutcome(
            error="runtime",
            error_type="WorkerDied",
            details=f"the grading process died while grading this sample ({slot.channel.describe_exit()}): {exc}",
            duration=time.perf_counter() - started,
        )
    return [Chunk(rest[1:], careful=True)] if len(rest) > 1 else []


def timed_out(limit: float, seconds: float) -> PythonOutcome:
    return PythonOutcome(
        error="timeout",
        error_type="TimeoutError",
        details=f"grade() ran longer than {limit:g}s; its worker was killed",
        duration=seconds,
    )
