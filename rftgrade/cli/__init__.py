"""The ``rftgrade`` command line: a thin face over the library API."""

from __future__ import annotations

from rftgrade.cli.main import app, main

__all__ = ["app", "main"]
