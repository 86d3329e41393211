"""Pausing Python's cyclic garbage collector over bursts of allocation.

Grading a batch builds several small objects per row (rows, results, wire
forms). None of them form reference cycles, but each allocation counts towards
the collector's thresholds, so a 10,000-row batch triggers collections that
traverse every live object of the process (the batch itself, the caller's
dataset, every imported module) again and again: measured here, collections
took 5-14 µs per row of a sandboxed batch, as much as the grader itself.
Reference counting still frees everything as usual while the collector is
paused; only the search for cycles waits until the burst is over.

The pause is process-wide and not counted: the outermost ``with`` re-enables
the collector; an inner one (or one in another thread meanwhile) is a no-op.
At worst a collection runs a little earlier than it could have.

Because the pause is process-wide, it is only taken where the process is
rftgrade's own: ``rftgrade serve`` and the CLI call :func:`set_gc_pausing`. A
trainer that calls ``Grader.run_batch`` keeps its collector as it set it, unless
it opts in with ``rftgrade.set_gc_pausing(True)``.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["gc_paused", "set_gc_pausing"]

_pausing = False


def set_gc_pausing(enabled: bool) -> None:
    """Let rftgrade pause the cyclic collector while it grades a batch (off by default).

    Turn it on in a process that is mostly grading (the server and the CLI do); leave
    it off in a host process (a trainer) whose collector rftgrade should not touch.
    """
    global _pausing
    _pausing = enabled


@contextmanager
def gc_paused(*, freeze: bool = False) -> Iterator[None]:
    """Pause the cyclic collector for the ``with`` block, where pausing is on and it is not already off.

    ``freeze`` also moves every object alive now out of the collector's sight
    (:func:`gc.freeze`) for the rest of the process: a long burst that collects
    now and then (``rftgrade grade`` on a big file) then traverses only what the
    burst made, not every imported module again (a 19 ms collection, holding the
    GIL that the workers' feeder needs, became ~1 ms).
    """
    if not _pausing or not gc.isenabled():
        yield
        return
    if freeze:
        gc.freeze()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
