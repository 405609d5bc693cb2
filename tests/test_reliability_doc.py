"""``docs/reliability.md`` names the test behind each guarantee: every one it names must exist."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "reliability.md"


def referenced_tests() -> list[tuple[str, str]]:
    """``(file, test name)`` for each ``tests/…py::test_…`` or ``…::test_…`` in the page."""
    found: list[tuple[str, str]] = []
    current = ""
    for match in re.finditer(r"`(tests/[\w/]+\.py)?(?:::)?(?:…::)?(test_\w+)?", DOC.read_text()):
        path, name = match.groups()
        if path:
            current = path
        if name:
            found.append((current, name))
    return found


def test_every_test_the_reliability_page_names_exists() -> None:
    references = referenced_tests()
    assert len(references) >= 30
    missing = [
        f"{path}::{name}"
        for path, name in references
        if not re.search(rf"^(async )?def {name}\(", (ROOT / path).read_text(), re.MULTILINE)
    ]
    assert missing == []
