"""A batch as two columns, samples and items, the shape RL trainers already hold.

``Grader.run_batch(Columns(samples, items))`` grades the same rows as
``run_batch([{"sample": s, "item": i}, ...])``. When every sample is text within
the length limit and every item a dict (or JSON text, :class:`RawItem`), a python
grader's calls are the columns themselves: no object per row on the host before
the sandbox. Any other batch is graded row by row, with the same checks and
flags as a list of rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from rftgrade._rawitem import RawItem

__all__ = ["Columns"]


class Columns:
    """``samples[i]`` with ``items[i]``, for every ``i``.

    Raises:
        ValueError: the two columns differ in length.
    """

    __slots__ = ("items", "samples")

    def __init__(self, samples: Sequence[Any], items: Sequence[Mapping[str, Any] | RawItem | None]) -> None:
        if len(samples) != len(items):
            raise ValueError(
                f"Columns: samples has {len(samples):,} entries and items {len(items):,}; "
                "give one item per sample"
            )
        self.samples = samples
        self.items = items

    @classmethod
    def from_groups(cls, groups: Iterable[tuple[Any, Sequence[Any]]]) -> Columns:
        """``(item, samples)`` pairs, a GRPO batch's shape, as columns: each group's
        samples in turn, all of them holding the group's one item object (so the
        sandbox sends it once per chunk)."""
        samples: list[Any] = []
        items: list[Any] = []
        for item, group_samples in groups:
            samples += group_samples
            items += [item] * len(group_samples)
        return cls(samples, items)

    def __len__(self) -> int:
        return len(self.samples)

    def __repr__(self) -> str:
        return f"Columns({len(self):,} rows)"

    def rows(self) -> list[dict[str, Any]]:
        """The same batch as ``{"sample", "item"}`` rows."""
        return [{"sample": s, "item": i} for s, i in zip(self.samples, self.items, strict=True)]
