"""Building the Docker sandbox image, also on machines that reach no container registry.

The base is ``python:3.11-slim-bookworm`` when it is present or can be pulled;
otherwise a minimal Debian bookworm with Python is built from Debian packages
(``debootstrap --variant=minbase``) and imported with ``docker import``. The
grader packages are wheels downloaded on the host (see :mod:`.build`); the build
itself needs no network.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from rftgrade.sandbox._backend import WORKER_FILES
from rftgrade.sandbox.build import DEFAULT_WHEELHOUSE, SANDBOX_DIR, build_wheelhouse, install_wordnet

__all__ = ["DEBIAN_BASE", "IMAGE", "STOCK_BASE", "build_image", "ensure_base"]

IMAGE = os.environ.get("RFTGRADE_SANDBOX_IMAGE", "rftgrade/sandbox:latest")
STOCK_BASE = "python:3.11-slim-bookworm"
DEBIAN_BASE = "rftgrade/debian-python:bookworm"
DEBIAN_MIRROR = os.environ.get("RFTGRADE_DEBIAN_MIRROR", "http://deb.debian.org/debian")


def _run(cmd: list[str], **kwargs: object) -> subprocess.CompletedProcess[bytes]:
    print("+", " ".join(cmd), flush=True)
    return subprocess.run(cmd, check=True, **kwargs)  # type: ignore[call-overload,no-any-return]


def _has_image(name: str) -> bool:
    return subprocess.run(["docker", "image", "inspect", name], capture_output=True).returncode == 0


def ensure_base() -> str:
    """A base image with Python 3.11 + venv: stock if available, else built from Debian."""
    requested = os.environ.get("RFTGRADE_SANDBOX_BASE")
    if requested:
        return requested
    if _has_image(STOCK_BASE):
        return STOCK_BASE
    pulled = subprocess.run(["docker", "pull", STOCK_BASE], capture_output=True, timeout=120)
    if pulled.returncode == 0:
        return STOCK_BASE
    if _has_image(DEBIAN_BASE):
        return DEBIAN_BASE
    if shutil.which("debootstrap") is None:
        raise RuntimeError(
            f"cannot pull {STOCK_BASE} and debootstrap is missing (apt-get install debootstrap)"
        )
    root = Path(tempfile.mkdtemp(prefix="rftgrade-rootfs-"))
    try:
        _run(
            [
                "debootstrap",
                "--variant=minbase",
                "--include=python3,python3-venv",
                "bookworm",
                str(root),
                DEBIAN_MIRROR,
            ],
            stdout=subprocess.DEVNULL,
        )
        for cache in ("var/cache/apt/archives", "var/lib/apt/lists"):
            for entry in (root / cache).glob("*"):
                if entry.is_file():
                    entry.unlink()
        tar = subprocess.Popen(["tar", "-C", str(root), "-c", "."], stdout=subprocess.PIPE)
        _run(["docker", "import", "-", DEBIAN_BASE], stdin=tar.stdout, stdout=subprocess.DEVNULL)
        tar.wait()
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return DEBIAN_BASE


def build_image(tag: str = IMAGE, wheelhouse: Path = DEFAULT_WHEELHOUSE) -> str:
    """Build the sandbox image and return its tag."""
    if not (wheelhouse.is_dir() and any(wheelhouse.glob("*.whl"))):
        build_wheelhouse(wheelhouse)
    base = ensure_base()
    with tempfile.TemporaryDirectory(prefix="rftgrade-image-") as tmp:
        context = Path(tmp)
        for name in ("Dockerfile", *WORKER_FILES, "requirements.txt", "requirements-optional.txt"):
            shutil.copyfile(SANDBOX_DIR / name, context / name)
        shutil.copytree(wheelhouse, context / "wheelhouse")
        (context / "nltk_data").mkdir()
        install_wordnet(context / "nltk_data")
        label = (
            ["--label", f"org.rftgrade.inputs={os.environ['RFTGRADE_IMAGE_INPUTS']}"]
            if os.environ.get("RFTGRADE_IMAGE_INPUTS")
            else []
        )
        _run(
            [
                "docker",
                "build",
                "--network",
                "none",
                "--build-arg",
                f"BASE={base}",
                *label,
                "-t",
                tag,
                str(context),
            ]
        )
    return tag
