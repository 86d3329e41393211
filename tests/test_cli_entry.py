"""The ``rftgrade`` entry point builds only the command it runs, and every command
runs that way as it does in the full app."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from rftgrade.cli._commands import COMMANDS, app_for
from rftgrade.cli.main import app

from .conftest import EXAMPLES


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_each_command_alone_parses_as_in_the_full_app(name: str) -> None:
    alone = CliRunner().invoke(app_for(["rftgrade", name]), [name, "--help"])
    full = CliRunner().invoke(app, [name, "--help"])
    assert alone.exit_code == full.exit_code == 0, alone.output
    assert alone.output == full.output


def test_the_full_app_lists_every_command() -> None:
    listing = CliRunner().invoke(app_for(["rftgrade", "--help"]), ["--help"])
    assert listing.exit_code == 0
    for name in COMMANDS:
        assert name in listing.output


def test_a_command_imports_only_its_own_module() -> None:
    probe = (
        "import sys\n"
        f"sys.argv = ['rftgrade', 'validate', {str(EXAMPLES / 'math_answer' / 'grader.json')!r}]\n"
        "from rftgrade.cli import main\n"
        "try:\n    main()\nexcept SystemExit as exc:\n    assert not exc.code, exc.code\n"
        "print(' '.join(sorted(m for m in sys.modules if m.startswith('rftgrade.cli.'))))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True
    )
    loaded = set(out.stdout.strip().splitlines()[-1].split())  # the probe's last line
    assert "rftgrade.cli.validate_cmd" in loaded
    for other in (
        "rftgrade.cli.serve_cmd",
        "rftgrade.cli.eval_cmd",
        "rftgrade.cli.grade_cmd",
        "rftgrade.cli.main",
    ):
        assert other not in loaded


def test_an_unknown_command_gets_the_full_apps_error() -> None:
    result = CliRunner().invoke(app_for(["rftgrade", "grde"]), ["grde"])
    assert result.exit_code == 2
    assert "grde" in result.output


@pytest.mark.parametrize("preset", [None, "logfire"])
def test_the_cli_skips_pydantics_plugin_scan_unless_the_user_set_it(preset: str | None) -> None:
    # The scan reads every installed distribution's metadata on the first model
    # build (slow in a trainer's big environment); the CLI turns it off, and a
    # value the user set (here: only one plugin off) is left as it is.
    probe = (
        "import importlib.metadata, os, sys\n"
        "scans = []\n"
        "real = importlib.metadata.distributions\n"
        "importlib.metadata.distributions = lambda *a, **k: (scans.append(1), real(*a, **k))[1]\n"
        f"sys.argv = ['rftgrade', 'validate', {str(EXAMPLES / 'math_answer' / 'grader.json')!r}]\n"
        "from rftgrade.cli import main\n"
        "try:\n    main()\nexcept SystemExit as exc:\n    assert not exc.code, exc.code\n"
        "print(os.environ['PYDANTIC_DISABLE_PLUGINS'], bool(scans))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYDANTIC_DISABLE_PLUGINS"}
    if preset is not None:
        env["PYDANTIC_DISABLE_PLUGINS"] = preset
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True, env=env
    )
    value, scanned = out.stdout.strip().splitlines()[-1].split()
    assert value == (preset or "__all__")
    # With the scan off, nothing on this path lists the installed distributions.
    assert scanned == ("True" if preset else "False")


@pytest.mark.parametrize("how", ["script", "module"])
def test_version_prints_the_packages_version(how: str) -> None:
    import shutil

    import rftgrade

    script = shutil.which("rftgrade") or "rftgrade (not on PATH: pip install -e .)"
    argv = [script, "--version"] if how == "script" else [sys.executable, "-m", "rftgrade", "--version"]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == f"rftgrade {rftgrade.__version__}"
