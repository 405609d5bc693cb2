"""The contributor docs, the CI script and the pre-commit hooks name commands that exist."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.helpers import nox_matrix

ROOT = Path(__file__).resolve().parent.parent
CONTRIBUTOR_DOCS = ("CONTRIBUTING.md", "docs/development.md")


def _read(name: str) -> str:
    path = ROOT / name
    if not path.exists():
        pytest.skip(f"{name} is not in this tree")
    return path.read_text()


def _pairs() -> set[str]:
    return {
        f"tests-{python}-django{django}"
        for django, pythons in nox_matrix().items()
        for python in pythons
    }


def _make_targets() -> set[str]:
    return set(re.findall(r"^([\w-]+):", _read("Makefile"), re.MULTILINE))


@pytest.mark.parametrize("doc", CONTRIBUTOR_DOCS)
def test_documented_make_targets_exist(doc: str) -> None:
    named = set(re.findall(r"\bmake ([a-z][\w-]*)", _read(doc)))
    assert named, doc
    assert named <= _make_targets()


@pytest.mark.parametrize("doc", [*CONTRIBUTOR_DOCS, ".ci/run"])
def test_named_nox_sessions_exist(doc: str) -> None:
    assert set(re.findall(r"\btests-[\d.]+-django[\d.]*\d", _read(doc))) <= _pairs()


def test_ci_tests_every_supported_pair() -> None:
    script = _read(".ci/run")
    assert re.search(r"^env .*make test PYTHON=", script, re.MULTILINE)
    # .ci/run asserts which pair `make test` ran on; nox runs the others.
    (make_test_pair,) = re.findall(r"assert v == '(\d\.\d+) (\d\.\d+)'", script)
    named = set(re.findall(r"\btests-[\d.]+-django[\d.]*\d", script))
    assert named | {"tests-{}-django{}".format(*make_test_pair)} == _pairs()
    assert "--error-on-missing-interpreters" in script


def test_pre_commit_runs_the_checks_of_make_test() -> None:
    hooks = re.findall(r"^\s+entry: (.+)$", _read(".pre-commit-config.yaml"), re.MULTILINE)
    assert hooks == ["make lint", "make typecheck"]
    (test_line,) = re.findall(r"^test: (.+)$", _read("Makefile"), re.MULTILINE)
    assert {"lint", "typecheck"} <= set(test_line.split())


def test_installation_page_shows_the_tested_matrix() -> None:
    page = _read("docs/installation.md")
    (header,) = re.findall(r"^\| Django \\ Python \|(.+)\|$", page, re.MULTILINE)
    pythons = [cell.strip() for cell in header.split("|")]
    rows = re.findall(r"^\| (\d\.\d+)(?: LTS)? \|(.+)\|$", page, re.MULTILINE)
    shown = {
        django: tuple(p for p, cell in zip(pythons, cells.split("|"), strict=True) if "✓" in cell)
        for django, cells in rows
    }
    assert shown == nox_matrix()
