"""A fresh deterministic chat model on loopback for each eval test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from rftgrade.testing.fake_model import FakeModelServer


@pytest.fixture
def server() -> Iterator[FakeModelServer]:
    with FakeModelServer() as s:
        yield s
