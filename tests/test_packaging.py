"""The wheel carries what the sandboxes need: a pip-installed rftgrade runs python
graders without a source checkout."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.timeout(300)
def test_the_wheel_ships_the_worker_and_the_image_definition(tmp_path: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            str(ROOT),
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
        ],
        check=True,
        capture_output=True,
        timeout=280,
    )
    (wheel,) = tmp_path.glob("rftgrade-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        shipped = {name: archive.read(name) for name in archive.namelist() if "/_files/" in name}
    for name in ("worker.py", "Dockerfile", "requirements.txt", "requirements-optional.txt"):
        assert shipped[f"rftgrade/sandbox/_files/{name}"] == (ROOT / "sandbox" / name).read_bytes()
