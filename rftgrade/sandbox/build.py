"""Building sandbox environments without network access inside them.

Wheels are downloaded (or built) on the host into a wheelhouse; the bwrap
environment is a venv of the system Python installed from that wheelhouse with
``--no-index``, and the Docker image installs the same wheels during
``docker build`` (see ``sandbox/Dockerfile``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from rftgrade._wordnet import find_wordnet_dir
from rftgrade.sandbox._backend import SANDBOX_FILES
from rftgrade.sandbox.bwrap import DEFAULT_VENV, SYSTEM_PYTHON

__all__ = ["SANDBOX_DIR", "build_bwrap_env", "build_wheelhouse", "install_wordnet"]

SANDBOX_DIR = SANDBOX_FILES
DEFAULT_WHEELHOUSE = Path(os.environ.get("RFTGRADE_WHEELHOUSE", "/var/cache/rftgrade/wheelhouse"))


def _run(cmd: list[str], **kwargs: object) -> None:
    print("+", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True, **kwargs)  # type: ignore[call-overload]


def build_wheelhouse(wheelhouse: Path = DEFAULT_WHEELHOUSE) -> Path:
    """Download (or build, for sdist-only packages) every wheel the sandbox needs."""
    wheelhouse.mkdir(parents=True, exist_ok=True)
    _run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "-w",
            str(wheelhouse),
            "-r",
            str(SANDBOX_DIR / "requirements.txt"),
        ]
    )
    optional = SANDBOX_DIR / "requirements-optional.txt"
    for line in optional.read_text().splitlines():
        spec = line.split("#")[0].strip()
        if spec:
            try:
                _run(
                    [
                        sys.executable,
                        "-m",
                        "pip",
                        "download",
                        "-q",
                        "--only-binary=:all:",
                        "-d",
                        str(wheelhouse),
                        spec,
                    ]
                )
            except subprocess.CalledProcessError:
                print(f"note: no wheel for {spec} here; it is left out of the sandbox", flush=True)
    return wheelhouse


def install_wordnet(target: Path) -> None:
    """Copy WordNet into ``target/corpora/wordnet`` (NLTK's layout) for graders using nltk."""
    try:
        source = find_wordnet_dir()
    except RuntimeError as exc:
        print(f"note: {exc}; NLTK's WordNet will be missing in the sandbox", flush=True)
        return
    dest = target / "corpora" / "wordnet"
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(source, dest, symlinks=False)


def build_bwrap_env(venv: Path = DEFAULT_VENV, wheelhouse: Path = DEFAULT_WHEELHOUSE) -> Path:
    """Create the read-only environment bwrap binds at /opt/grader."""
    if not (wheelhouse.is_dir() and any(wheelhouse.glob("*.whl"))):
        build_wheelhouse(wheelhouse)
    if venv.exists():
        shutil.rmtree(venv)
    venv.parent.mkdir(parents=True, exist_ok=True)
    _run([SYSTEM_PYTHON, "-m", "venv", str(venv)])
    pip = [
        str(venv / "bin" / "python"),
        "-m",
        "pip",
        "install",
        "-q",
        "--no-index",
        "--find-links",
        str(wheelhouse),
    ]
    _run([*pip, "-r", str(SANDBOX_DIR / "requirements.txt")])
    for line in (SANDBOX_DIR / "requirements-optional.txt").read_text().splitlines():
        spec = line.split("#")[0].strip()
        if spec:
            try:
                _run([*pip, spec])
            except subprocess.CalledProcessError:
                print(f"note: {spec} not installed in the bwrap sandbox", flush=True)
    install_wordnet(venv / "nltk_data")
    # Readable by the unprivileged sandbox uid, writable by nobody.
    for root, dirs, files in os.walk(venv):
        for name in dirs:
            os.chmod(os.path.join(root, name), 0o755)
        for name in files:
            path = os.path.join(root, name)
            if not os.path.islink(path):
                os.chmod(path, os.stat(path).st_mode & 0o755 | 0o444)
    for parent in [venv, *venv.parents]:
        if str(parent) in ("/", ""):
            break
        os.chmod(parent, os.stat(parent).st_mode | 0o055)
    return venv
