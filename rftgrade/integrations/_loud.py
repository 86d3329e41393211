"""Loud, then counted: what goes wrong while grading for a trainer, said once and then tallied.

A trainer's reward call must never raise, so what goes wrong in one (a server that is
down, samples that fail to grade, completions cut inside their reasoning) is logged at
WARNING with its cause and its fix the first time for each kind and place, then counted,
one line per :data:`LOG_EVERY` more, so a long run's log stays readable.
"""

from __future__ import annotations

import logging
import threading

__all__ = ["LOG_EVERY", "failure_count", "note_failure", "reset_counter_locks"]

log = logging.getLogger("rftgrade.integrations")

LOG_EVERY = 100
"""After the first WARNING, one line per this many further failures of the same kind."""


class _Counter:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.failures = 0
        self.rows = 0


_COUNTERS: dict[tuple[str, str], _Counter] = {}


def note_failure(kind: str, where: str, message: str, rows: int, outcome: str = "scored as failed") -> None:
    """Log a failure at WARNING the first time for ``(kind, where)``, then one line per
    :data:`LOG_EVERY` more; ``rows`` samples were ``outcome`` because of it."""
    counter = _COUNTERS.setdefault((kind, where), _Counter())
    with counter.lock:
        counter.failures += 1
        counter.rows += rows
        n, total = counter.failures, counter.rows
    if n == 1:
        log.warning(
            "rftgrade: %s from %s: %s (%d sample(s) %s); further ones are counted, one line per %d",
            kind,
            where,
            message,
            rows,
            outcome,
            LOG_EVERY,
        )
    elif n % LOG_EVERY == 0:
        log.warning("rftgrade: %d %s from %s so far (%d samples); latest: %s", n, kind, where, total, message)


def failure_count(kind: str, where: str) -> int:
    """How many failures of ``kind`` were noted for ``where`` in this process."""
    counter = _COUNTERS.get((kind, where))
    return counter.failures if counter else 0


def reset_counter_locks() -> None:
    """New locks for a forked child, whose copies may be held by a thread it lacks."""
    for counter in _COUNTERS.values():
        counter.lock = threading.Lock()
