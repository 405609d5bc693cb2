"""A clean environment for the quickstart test: the built wheel and only what the docs install.

By default the dependencies are linked from this test run's own environment (the versions pip
would pick here anyway) into a fresh ``venv --without-pip``, which takes a second instead of a
minute; ``SCOUT_QUICKSTART_PIP=1`` installs them with pip from the package index instead.
Either way the project sees the wheel and the named distributions with their dependencies, and
nothing else: not this repository, not the test extras.
"""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from email.parser import Parser
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
USE_PIP = os.environ.get("SCOUT_QUICKSTART_PIP") == "1"


def build_wheel(out: Path) -> Path:
    """Build django-scout's wheel from this checkout into ``out``."""
    subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(out), ROOT],
        check=True,
        capture_output=True,
    )
    (wheel,) = out.glob("django_scout-*.whl")
    return wheel


def wheel_requirements(wheel: Path) -> list[str]:
    """The ``Requires-Dist`` lines of ``wheel`` (its runtime dependencies and extras)."""
    with zipfile.ZipFile(wheel) as archive:
        (name,) = (n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        message = Parser().parsestr(archive.read(name).decode("utf-8"))
    return message.get_all("Requires-Dist") or []


def _wanted(requirement: Requirement, extra: str) -> bool:
    return requirement.marker is None or requirement.marker.evaluate({"extra": extra})


def closure(requirements: list[str]) -> dict[str, metadata.Distribution]:
    """The installed distributions ``requirements`` need, transitively (markers evaluated)."""
    found: dict[str, metadata.Distribution] = {}
    todo = [(Requirement(line), "") for line in requirements]
    while todo:
        requirement, extra = todo.pop()
        if not _wanted(requirement, extra):
            continue
        key = canonicalize_name(requirement.name)
        if key in found:
            continue
        found[key] = dist = metadata.distribution(requirement.name)
        for line in dist.requires or []:
            for wanted_extra in ("", *requirement.extras):
                todo.append((Requirement(line), wanted_extra))
    return found


class CleanVenv:
    """A virtualenv that holds only what :meth:`install` was asked for."""

    def __init__(self, path: Path) -> None:
        self.path = path
        args = [sys.executable, "-m", "venv", str(path)]
        if not USE_PIP:
            args.append("--without-pip")
        subprocess.run(args, check=True, capture_output=True)
        self.python = path / "bin" / "python"
        self.site = Path(
            subprocess.run(
                [self.python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                check=True,
                capture_output=True,
                text=True,
            ).stdout.strip()
        )
        assert self.site.is_relative_to(path), self.site

    def install(self, *requirements: str, wheel: Path | None = None) -> None:
        """Install ``wheel`` (if given) and ``requirements``, with their dependencies."""
        if USE_PIP:
            targets = [str(wheel)] if wheel else []
            subprocess.run(
                [self.python, "-m", "pip", "install", "-q", *targets, *requirements],
                check=True,
                capture_output=True,
            )
            return
        needed = list(requirements)
        if wheel is not None:
            # A pure-Python wheel installs by unpacking it (no pip needed: uv-made venvs lack it).
            with zipfile.ZipFile(wheel) as archive:
                (tags,) = (n for n in archive.namelist() if n.endswith(".dist-info/WHEEL"))
                assert b"Root-Is-Purelib: true" in archive.read(tags)
                archive.extractall(self.site)
            needed += wheel_requirements(wheel)
        for dist in closure(needed).values():
            self._link(dist)

    def _link(self, dist: metadata.Distribution) -> None:
        """Make ``dist`` importable here by linking its top-level files and directories."""
        files = dist.files
        assert files is not None, f"{dist.metadata['Name']} has no RECORD"
        for top in {file.parts[0] for file in files}:
            if top in ("..", "__pycache__") or top.endswith(".pth"):
                continue  # scripts, stray bytecode and path hooks stay behind
            target = self.site / top
            if not target.exists():
                target.symlink_to(Path(str(dist.locate_file(top))))

    def env(self) -> dict[str, str]:
        """A minimal environment: this venv first on PATH, nothing from the test run."""
        return {
            "PATH": f"{self.path / 'bin'}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}",
            "HOME": os.environ.get("HOME", str(self.path)),
            "LANG": "C.UTF-8",
            "PYTHONUNBUFFERED": "1",
            "PYTHONDONTWRITEBYTECODE": "1",
            "VIRTUAL_ENV": str(self.path),
            "TMPDIR": os.environ.get("TMPDIR", "/tmp"),
        }
