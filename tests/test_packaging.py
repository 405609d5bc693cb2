"""The wheel ships everything the app needs at run time."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "django_scout"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "build",
            "--wheel",
            "--no-isolation",
            "--outdir",
            str(out),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
    )
    (built,) = out.glob("django_scout-*.whl")
    return built


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
