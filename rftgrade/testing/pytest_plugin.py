"""pytest plugin (registered as ``rftgrade``): a ``load_grader`` fixture that closes what it opens.

def test_my_grader(load_grader):
    grader = load_grader("grader.json", sandbox="bwrap")
    ...
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from rftgrade._grader import Grader
from rftgrade._load import load_spec
from rftgrade._runtime import build_runtime

__all__ = ["load_grader"]


@pytest.fixture
def load_grader() -> Iterator[Callable[..., Grader]]:
    """Load graders (with a sandbox for python graders when ``sandbox`` is given); closed after the test."""
    opened: list[Grader] = []

    def load(source: Any, *, sandbox: str | None = None, **kwargs: Any) -> Grader:
        if sandbox is not None and "runtime" not in kwargs:
            # One worker: a unit test grades a handful of rows, and starts fast.
            spec = load_spec(source)
            kwargs["runtime"] = build_runtime(
                spec,
                python=kwargs.pop("python", None),
                judge=kwargs.pop("judge", None),
                sandbox=sandbox,
                workers=1,
                own_given=True,
                python_timeout=kwargs.pop("python_timeout", None),
                python_batch_timeout=kwargs.pop("python_batch_timeout", None),
            )
            source = spec
        grader = Grader(source, **kwargs)
        opened.append(grader)
        return grader

    yield load
    for grader in opened:
        grader.close()
