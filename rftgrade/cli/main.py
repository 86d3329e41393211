"""The full ``rftgrade`` app, every command of :data:`rftgrade.cli._commands.COMMANDS`.

Tests and embedders use :data:`app`; the ``rftgrade`` script builds only the
command it runs (:func:`rftgrade.cli._commands.main`).
"""

from __future__ import annotations

from rftgrade.cli._commands import COMMANDS, build_app, main

__all__ = ["app", "main"]

app = build_app(COMMANDS)
