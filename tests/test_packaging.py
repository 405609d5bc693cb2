"""The wheel ships everything the app needs at run time; the sdist, what its tests need."""

from __future__ import annotations

import email
import json
import shutil
import subprocess
import sys
import tarfile
import zipfile
from email.message import Message
from pathlib import Path

import pytest

from tests.helpers import nox_matrix, run_python
from tests.quickstart_env import CleanVenv, build_wheel

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "django_scout"
REPO_URL = "https://github.com/django-scout/django-scout"
DOCS_URL = "https://django-scout.readthedocs.io/"
# Loaded only by pytest itself (the pytest11 entry point), so it may import pytest.
NEEDS_PYTEST = {"django_scout.testing.pytest_plugin"}
# Test and example extras that no module of django_scout may need at import time.
TEST_ONLY = ("pytest", "psycopg", "redis", "dj_database_url", "gunicorn", "uvicorn", "playwright")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_wheel(tmp_path_factory.mktemp("dist"))


@pytest.fixture(scope="module")
def metadata(wheel: Path) -> Message:
    with zipfile.ZipFile(wheel) as archive:
        (name,) = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        return email.message_from_bytes(archive.read(name))


@pytest.fixture(scope="module")
def sdist_names(tmp_path_factory: pytest.TempPathFactory) -> set[str]:
    out = tmp_path_factory.mktemp("sdist")
    command = [sys.executable, "-m", "build", "--sdist", "--no-isolation", "--outdir", str(out)]
    subprocess.run([*command, ROOT], check=True, capture_output=True)
    (sdist,) = out.glob("django_scout-*.tar.gz")
    with tarfile.open(sdist) as archive:
        # Drop the leading "django_scout-<version>/".
        return {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}


@pytest.fixture(scope="module")
def wheel_names(wheel: Path) -> set[str]:
    with zipfile.ZipFile(wheel) as archive:
        return set(archive.namelist())


def test_wheel_ships_typing_marker_and_migrations(wheel_names: set[str]) -> None:
    assert "django_scout/py.typed" in wheel_names
    assert "django_scout/migrations/__init__.py" in wheel_names


def test_wheel_ships_every_package_file(wheel_names: set[str]) -> None:
    ignored = {"__pycache__"}
    expected = {
        path.relative_to(ROOT).as_posix()
        for path in PACKAGE.rglob("*")
        if path.is_file() and not ignored.intersection(path.parts) and path.suffix != ".pyc"
    }
    missing = expected - wheel_names
    assert not missing, f"files missing from the wheel: {sorted(missing)}"


def test_wheel_has_no_tests_or_example(wheel_names: set[str]) -> None:
    assert not any(name.startswith(("tests/", "example_project/")) for name in wheel_names)


def test_wheel_registers_pytest_plugin(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        (name,) = [n for n in archive.namelist() if n.endswith(".dist-info/entry_points.txt")]
        entry_points = archive.read(name).decode()
    assert "[pytest11]" in entry_points
    assert "django_scout = django_scout.testing.pytest_plugin" in entry_points


def test_wheel_ships_the_license(wheel_names: set[str]) -> None:
    assert any(name.endswith(".dist-info/licenses/LICENSE") for name in wheel_names)


def test_metadata_names_the_project_urls_and_license(metadata: Message) -> None:
    urls = dict(value.split(", ", 1) for value in metadata.get_all("Project-URL", []))
    assert urls["Homepage"] == urls["Source"] == REPO_URL
    assert urls["Documentation"] == DOCS_URL
    assert urls["Changelog"].startswith(DOCS_URL)
    assert metadata["License-Expression"] == "MIT"
    assert (ROOT / "LICENSE").read_text().startswith("MIT License")


def test_classifiers_list_exactly_the_tested_versions(metadata: Message) -> None:
    classifiers = metadata.get_all("Classifier", [])
    matrix = nox_matrix()
    djangos = {c.rsplit(" ", 1)[1] for c in classifiers if c.startswith("Framework :: Django :: ")}
    pythons = {
        c.rsplit(" ", 1)[1]
        for c in classifiers
        if c.startswith("Programming Language :: Python :: 3.")
    }
    assert djangos == set(matrix)
    assert pythons == {python for versions in matrix.values() for python in versions}
    requires = metadata["Requires-Python"]
    assert requires == f">={min(pythons, key=lambda v: tuple(map(int, v.split('.'))))}"
    for prefix in ("Development Status :: ", "Intended Audience :: ", "Environment :: "):
        assert any(c.startswith(prefix) for c in classifiers), prefix


def _tracked(*folders: str) -> set[str]:
    """Files git tracks under ``folders`` (skips outside a git checkout, e.g. in an sdist)."""
    git = shutil.which("git")
    if git is None or not (ROOT / ".git").exists():
        pytest.skip("needs a git checkout to know which files the repository tracks")
    listed = subprocess.run(
        [git, "ls-files", "-z", "--", *folders], cwd=ROOT, capture_output=True, check=True
    ).stdout.decode()
    return {name for name in listed.split("\0") if name and (ROOT / name).is_file()}


def test_sdist_ships_what_its_tests_read(sdist_names: set[str]) -> None:
    needed = _tracked("django_scout", "tests", "docs", "example_project")
    needed |= {"LICENSE", "README.md", "CONTRIBUTING.md", "mkdocs.yml", "pyproject.toml"}
    needed |= {"noxfile.py", "Makefile"}
    missing = needed - sdist_names
    assert not missing, f"files missing from the sdist: {sorted(missing)}"


def test_sdist_has_nothing_else(sdist_names: set[str]) -> None:
    top = {name.split("/", 1)[0] for name in sdist_names}
    assert top <= {
        *("django_scout", "tests", "docs", "example_project", "README.md", "CONTRIBUTING.md"),
        *("LICENSE", "Makefile", "mkdocs.yml", "noxfile.py", "pyproject.toml", "PKG-INFO"),
        ".gitignore",
    }


def test_sdist_has_no_runtime_leftovers(sdist_names: set[str]) -> None:
    leftovers = [
        name
        for name in sdist_names
        if name.startswith(("example_project/control/", "example_project/var/", "test-artifacts/"))
        or "__pycache__" in name
        or name.endswith(".sqlite3")
    ]
    assert not leftovers


IMPORT_EVERY_MODULE = """
import importlib, importlib.util, json, pkgutil, sys
import django
from django.conf import settings

settings.configure(
    INSTALLED_APPS=[
        "django.contrib.admin", "django.contrib.auth", "django.contrib.contenttypes",
        "django.contrib.sessions", "django.contrib.messages", "rest_framework", "django_scout",
    ],
    DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
    ROOT_URLCONF="django_scout.urls",
    USE_TZ=True,
)
django.setup()
import django_scout

present = [name for name in sys.argv[2:] if importlib.util.find_spec(name) is not None]
assert not present, f"test extras leaked into the clean venv: {present}"
imported = []
for module in pkgutil.walk_packages(django_scout.__path__, "django_scout."):
    if module.name not in sys.argv[1].split(","):
        importlib.import_module(module.name)
        imported.append(module.name)
print(json.dumps(imported))
"""


def _source_modules() -> set[str]:
    modules = set()
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(ROOT).with_suffix("").parts
        modules.add(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return modules - {"django_scout"}


@pytest.mark.slow
def test_wheel_imports_every_module_with_runtime_dependencies_only(
    wheel: Path, tmp_path: Path
) -> None:
    """A clean venv with the wheel and its runtime dependencies imports every module."""
    clean = CleanVenv(tmp_path / "venv")
    clean.install(wheel=wheel)
    # Run from tmp_path, not the checkout, whose django_scout/ would shadow the wheel's.
    args = ["-c", IMPORT_EVERY_MODULE, ",".join(NEEDS_PYTEST), *TEST_ONLY]
    env = clean.env()
    imported = run_python(clean.python, args, cwd=tmp_path, env=env, timeout=300)
    assert set(json.loads(imported)) == _source_modules() - NEEDS_PYTEST
    run_python(clean.python, ["-m", "django_scout.testing", "--help"], cwd=tmp_path, env=env)
