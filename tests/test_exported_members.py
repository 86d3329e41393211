"""The public API is what `rftgrade/__init__.py` exports: sorted, complete, importable."""

from __future__ import annotations

import importlib

import pytest

import rftgrade

PACKAGES = [
    "rftgrade",
    "rftgrade.sandbox",
    "rftgrade.judge",
    "rftgrade.server",
    "rftgrade.integrations",
    "rftgrade.quality",
    "rftgrade.evaluate",
    "rftgrade.testing",
]


@pytest.mark.parametrize("name", PACKAGES)
def test_all_is_sorted_and_importable(name: str) -> None:
    module = importlib.import_module(name)
    exported = list(module.__all__)
    # isort style: CONSTANTS first, then the rest in plain order.
    assert exported == sorted(exported, key=lambda n: (not n.isupper(), n)), f"{name}.__all__ is not sorted"
    for member in exported:
        assert getattr(module, member) is not None, f"{name}.{member}"


def test_public_names_have_docstrings() -> None:
    for member in rftgrade.__all__:
        obj = getattr(rftgrade, member)
        if callable(obj) and not isinstance(obj, type(rftgrade)):
            assert (obj.__doc__ or "").strip(), f"rftgrade.{member} has no docstring"
