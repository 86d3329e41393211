"""The ``rftgrade`` command line: a thin face over the library API."""

from __future__ import annotations

from typing import Any

from rftgrade.cli._commands import main

__all__ = ["app", "main"]


def __getattr__(name: str) -> Any:
    # The full app imports every command; the script itself only needs `main`.
    if name == "app":
        from rftgrade.cli.main import app

        return app
    raise AttributeError(f"module 'rftgrade.cli' has no attribute {name!r}")
