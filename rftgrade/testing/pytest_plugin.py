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

__all__ = ["load_grader"]


@pytest.fixture
def load_grader() -> Iterator[Callable[..., Grader]]:
    """Load graders (with a sandbox for python graders when ``sandbox`` is given); closed after the test."""
    opened: list[Grader] = []

    def load(source: Any, *, sandbox: str | None = None, **kwargs: Any) -> Grader:
        python = None
        if sandbox is not None:
            from rftgrade.sandbox import SandboxExecutor

            python = SandboxExecutor(sandbox, workers=1)
        grader = Grader(source, python=python, **kwargs)
        opened.append(grader)
        return grader

    yield load
    for grader in opened:
        grader.close()
