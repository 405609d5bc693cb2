"""The pytest suite on every supported Python and Django pair, one command per pair.

``nox -s tests-3.12-django6.0`` runs one pair; ``nox -l`` lists them; ``nox`` runs them all.
Arguments after ``--`` go to pytest: ``nox -s tests-3.10-django4.2 -- -x tests/test_conf.py``.
Interpreters are looked up on PATH and under pyenv; a missing one is an error, never a skip.
With ``SCOUT_COVERAGE=1`` the suite runs under coverage and the report (with pyproject.toml's
floor) follows it.
nox rather than tox: which Django supports which Python is plain Python data here (the packaging
tests read it to check the classifiers), and the sessions build their virtualenvs with uv.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import nox

nox.needs_version = ">=2025.5.1"
nox.options.default_venv_backend = "uv|virtualenv"
nox.options.error_on_missing_interpreters = True
nox.options.download_python = "never"
nox.options.tags = ["tests"]

PYTHONS = ("3.10", "3.11", "3.12", "3.13")
# The Python versions each supported Django release supports (its release notes). The
# package's classifiers list exactly these (tests/test_packaging.py checks it).
DJANGO_PYTHONS = {
    "4.2": ("3.10", "3.11", "3.12"),
    "5.2": ("3.10", "3.11", "3.12", "3.13"),
    "6.0": ("3.12", "3.13"),
    "6.1": ("3.12", "3.13"),
}
PAIRS = [
    (python, django)
    for python in PYTHONS
    for django, pythons in DJANGO_PYTHONS.items()
    if python in pythons
]


def _put_pyenv_pythons_on_path() -> None:
    """Put each pyenv-installed Python of PYTHONS (its newest patch) ahead of pyenv's shims.

    The shims answer only for the versions pyenv has activated; the interpreters themselves
    are always under ``$PYENV_ROOT/versions/<version>/bin``.
    """
    versions = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    if not versions.is_dir():
        return
    found: dict[str, tuple[int, Path]] = {}
    for folder in versions.iterdir():
        match = re.fullmatch(r"(3\.\d+)\.(\d+)", folder.name)
        if match and match[1] in PYTHONS and (folder / "bin" / f"python{match[1]}").exists():
            patch = int(match[2])
            if match[1] not in found or patch > found[match[1]][0]:
                found[match[1]] = (patch, folder / "bin")
    extra = [str(bin_dir) for _, bin_dir in found.values()]
    os.environ["PATH"] = os.pathsep.join([*extra, os.environ.get("PATH", "")])


_put_pyenv_pythons_on_path()


def _pair_session(python: str, django: str) -> None:
    """Register ``tests-<python>-django<django>``: the suite on that one pair."""

    def run(session: nox.Session) -> None:
        session.install("-e", ".[test,example]", f"Django~={django}.0")
        expected = f"{python} {django}"
        session.run(
            "python",
            "-c",
            "import sys, django; "
            "found = '%d.%d %d.%d' % (sys.version_info[:2] + django.VERSION[:2]); "
            f"assert found == {expected!r}, found",
        )
        if os.environ.get("SCOUT_COVERAGE") == "1":
            session.run("coverage", "erase")
            session.run("coverage", "run", "-m", "pytest", *session.posargs)
            session.run("coverage", "combine", "--quiet")
            session.run("coverage", "report")
        else:
            session.run("pytest", *session.posargs)

    run.__doc__ = f"pytest on Python {python} with Django {django}."
    nox.session(python=python, name=f"tests-{python}-django{django}", tags=["tests"])(run)


for _python, _django in PAIRS:
    _pair_session(_python, _django)
