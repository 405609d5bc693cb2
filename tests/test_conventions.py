"""Conventions the code keeps so that it reads on its own.

* Docstrings and comments of ``django_scout`` cite nothing outside the repository: no
  ``SCOUT_API.md §7``, no fact-sheet tags such as ``D15``, ``A5``, ``W1`` or ``U1``. They say the
  fact itself ("the legacy Apps API ends a stream with ``[DONE]``").
* Test modules import shared helpers from modules (``tests/helpers.py`` and its siblings), never
  from a ``conftest.py`` or another test module: pytest loads a conftest as a plugin and a test
  module as a test module, and importing either as a module too runs it twice under two names
  (and couples one test file to another's internals). Dotted paths in settings (a permission
  hook's) name helper modules too.
"""

from __future__ import annotations

import ast
import io
import re
import tokenize
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "django_scout"
TESTS = ROOT / "tests"

#: What a citation of a document outside the repository looks like.
CITATION = re.compile(
    r"""
    SCOUT_API\.md | DESIGN\.md | seeds?/\d     # the fact sheet, the design notes, the seed docs
    | §                                        # a section of one of them
    | \b[ADWU]\d{1,2}\b                        # fact-sheet tags: endpoints, discrepancies, unknowns
    | \[(?:SDK|INF|UNSPEC|S[0-4])\]            # its source tags
    """,
    re.VERBOSE,
)


def prose(source: str) -> Iterator[tuple[int, str]]:
    """Every comment and docstring of ``source`` (with its first line number)."""
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            yield token.start[0], token.string
    for node in ast.walk(ast.parse(source)):
        body = getattr(node, "body", None)
        if not isinstance(body, list):
            continue
        for statement in body:  # docstrings, and the strings documenting attributes
            if (
                isinstance(statement, ast.Expr)
                and isinstance(statement.value, ast.Constant)
                and isinstance(statement.value.value, str)
            ):
                yield statement.lineno, statement.value.value


def citations(source: str) -> list[str]:
    """``line: text`` of every citation in the comments and docstrings of ``source``."""
    return [
        f"{line}: {match.group(0)!r} in {text.strip()[:80]!r}"
        for line, text in prose(source)
        for match in CITATION.finditer(text)
    ]


@pytest.mark.parametrize(
    "source",
    [
        '"""Three formats (see ``SCOUT_API.md`` §7)."""\n',
        "def f():\n    '''A5/A6: start an interaction.'''\n",
        "X = 1  # both spellings, D15\n",
        "class C:\n    x = 1\n    '''[INF] keyed by block id'''\n",
    ],
)
def test_a_citation_is_found(source: str) -> None:
    assert citations(source)


@pytest.mark.parametrize(
    "source",
    [
        '"""``django_scout.E001``, ``W001``; ``SCOUT_API_KEY``; HTTP 502 and 503."""\n',
        'URL = "https://example.test/A5"  # a string that is code, not prose\n',
    ],
)
def test_plain_prose_and_code_are_not_citations(source: str) -> None:
    assert citations(source) == []


def offenders(folder: Path, find: Callable[[str], list[str]]) -> dict[str, list[str]]:
    """What ``find`` finds in each Python file below ``folder``, by path (files it finds
    nothing in left out)."""
    return {
        str(path.relative_to(ROOT)): found
        for path in sorted(folder.rglob("*.py"))
        if (found := find(path.read_text()))
    }


def test_package_prose_cites_nothing_outside_the_repository() -> None:
    assert offenders(PACKAGE, citations) == {}, "say the fact itself, not where it was read"


def _test_only(name: str) -> bool:
    last = name.split(".")[-1]
    return last == "conftest" or last.startswith("test_")


#: A dotted path (in a string: a setting's hook, a mock target) into a test module.
TEST_MODULE_PATH = re.compile(r"^tests(?:\.\w+)*\.(?:conftest|test_\w+)\.\w+$")


def imports_of_test_modules(source: str) -> list[str]:
    """The conftest and test modules that ``source`` imports or names by a dotted path."""
    named = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom):
            module = node.module or ""
            names = [module] if module else [alias.name for alias in node.names]
            named += [name for name in names if _test_only(name)]
        elif isinstance(node, ast.Import):
            named += [a.name for a in node.names if _test_only(a.name)]
        elif (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and TEST_MODULE_PATH.match(node.value)
        ):
            named.append(node.value)
    return named


def test_an_import_of_a_conftest_or_a_test_module_is_found() -> None:
    assert imports_of_test_modules("from .conftest import wait_for\n") == ["conftest"]
    assert imports_of_test_modules("from tests.client.conftest import API_KEY\n") == [
        "tests.client.conftest"
    ]
    assert imports_of_test_modules("from . import conftest\n") == ["conftest"]
    assert imports_of_test_modules("from tests.test_scale import flush\n") == ["tests.test_scale"]
    assert imports_of_test_modules("import tests.test_asgi\n") == ["tests.test_asgi"]
    hook = "tests." + "test_live.deny"  # split, or this file would name a test module
    assert imports_of_test_modules(f'HOOK = "{hook}"\n') == [hook]
    assert imports_of_test_modules("from tests.helpers import UNIT_SCOUT\n") == []
    assert imports_of_test_modules('HOOK = "tests.testapp.live.deny"\n') == []


def test_no_test_module_imports_from_a_conftest_or_another_test_module() -> None:
    assert offenders(TESTS, imports_of_test_modules) == {}, (
        "import shared helpers from a helpers module"
    )
