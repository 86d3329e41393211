"""How a batch is cut into chunks for a pool's workers (local and Ray alike)."""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["Chunk", "chunk_bounds"]


@dataclass
class Chunk:
    indices: list[int]
    careful: bool
    """Re-running the rest of a failed chunk: the worker answers after every sample,
    so the next failure names its sample exactly."""
    retried: bool = False
    """Re-run once already after a reply that named another request."""


def chunk_bounds(n: int, workers: int, largest: int, *, alone: bool = True) -> list[tuple[int, int]]:
    """Cut ``n`` calls into chunks, ``(start, stop)``, that shrink towards the end.

    Big chunks keep workers busy between the host's replies; small last ones make
    the workers finish together (the last chunk of a batch is what its slowest
    worker is still grading while the others wait). Each chunk is a share of what is
    left, at most ``largest`` and at least ``_SMALLEST`` (less in a small batch, which
    is still shared by every worker).

    A batch that is not ``alone`` on its pool (``rftgrade grade`` keeps several in
    flight, a server several clients) has no such tail: a worker done early takes the
    next batch's chunk. It is cut in equal chunks, one per worker (more when that is
    past ``largest``): the shrinking ones cost a tenth of the host's time on 2 cores,
    as frames and round trips, for nothing.
    """
    if not alone:
        count = max(min(workers, n), math.ceil(n / largest))
        return [(n * k // count, n * (k + 1) // count) for k in range(count)]
    bounds = []
    start = 0
    smallest = min(_SMALLEST, math.ceil(n / (2 * workers)))
    while start < n:
        size = max(smallest, min(largest, math.ceil((n - start) / (2 * workers))))
        bounds.append((start, min(n, start + size)))
        start += size
    return bounds


_SMALLEST = 32
