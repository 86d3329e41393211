"""The table of ``rftgrade`` commands, and the entry point that builds only the one it runs.

A command line names one command: ``main`` imports and builds that command alone
(typer turns every registered command's signature into click parameters on each
run, and each command module imports what it needs), so ``rftgrade grade`` does
not pay for ``serve`` or ``eval``. Help, completion and unknown names get the
full app (:data:`rftgrade.cli.main.app`), built from the same table.
"""

from __future__ import annotations

import gc
import importlib
import os
import sys
from collections.abc import Iterable
from typing import Annotated

import typer

__all__ = ["COMMANDS", "app_for", "build_app", "main"]

COMMANDS: dict[str, tuple[str, str]] = {
    # name: (module, attribute); a Typer attribute is a group of subcommands.
    "serve": ("rftgrade.cli.serve_cmd", "serve_cmd"),
    "calibrate": ("rftgrade.cli.quality_cmd", "calibrate_cmd"),
    "check": ("rftgrade.cli.quality_cmd", "check_cmd"),
    "validate": ("rftgrade.cli.validate_cmd", "validate_cmd"),
    "eval": ("rftgrade.cli.eval_cmd", "eval_cmd"),
    "compare": ("rftgrade.cli.compare_cmd", "compare_cmd"),
    "run": ("rftgrade.cli.grade_cmd", "run_cmd"),
    "grade": ("rftgrade.cli.grade_cmd", "grade_cmd"),
    "sandbox": ("rftgrade.cli.sandbox_cmd", "sandbox_app"),
    "export": ("rftgrade.cli.export_cmd", "export_app"),
}


def build_app(names: Iterable[str]) -> typer.Typer:
    """The ``rftgrade`` app with the commands ``names`` (keys of :data:`COMMANDS`)."""
    app = typer.Typer(
        name="rftgrade",
        help="Author, test and run OpenAI-compatible RFT graders locally.",
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        add_completion=False,
    )
    app.callback()(_group)
    for name in names:
        module, attribute = COMMANDS[name]
        command = getattr(importlib.import_module(module), attribute)
        if isinstance(command, typer.Typer):
            app.add_typer(command, name=name)
        else:
            app.command(name)(command)
    return app


def _print_version(wanted: bool) -> None:
    if wanted:
        from rftgrade import __version__

        typer.echo(f"rftgrade {__version__}")
        raise typer.Exit()


def _group(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print rftgrade's version and exit."
        ),
    ] = False,
) -> None:
    """The app's own options (the commands have theirs)."""


def app_for(argv: list[str]) -> typer.Typer:
    """The app that runs ``argv``: its command alone when ``argv[1]`` names one, else all."""
    if len(argv) > 1 and argv[1] in COMMANDS:
        # With one command and no callback, typer would run it without its name
        # (`rftgrade FILE`); build_app's callback keeps `rftgrade grade FILE`.
        return build_app([argv[1]])
    from rftgrade.cli.main import app as full

    return full


def main() -> None:
    """Entry point of the ``rftgrade`` script."""
    from rftgrade._gc import set_gc_pausing

    # The CLI owns its process: pausing the cyclic collector over a batch is its call to make.
    set_gc_pausing(True)
    # Nor does it load pydantic's plugins (observability hooks found through entry
    # points): the scan reads every installed distribution's metadata when the first
    # grader model is built, ~10 ms here and more in a trainer's environment of
    # hundreds of packages. A value the user set is kept.
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
    try:
        app_for(sys.argv)()
    finally:
        # Every object left is about to go: frozen, the interpreter's last collection
        # skips them (~50 ms after a big file), and reference counting still frees them.
        gc.freeze()
