"""The code blocks in README.md and every Markdown page under docs/ run as written."""

from __future__ import annotations

import sys
import types
from pathlib import Path

import pytest

from tests.support.docs import BLOCK, DOCS, ROOT, execute, module_name

PAGES = [
    ROOT / "README.md",
    *sorted(p for p in DOCS.rglob("*.md") if "_build" not in p.relative_to(DOCS).parts),
]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_python_blocks_execute(page: Path) -> None:
    """Each page's python blocks run in order, in one namespace, without error."""
    # A real module, as a user's file would be (frameworks such as Litestar look
    # their handlers' module up in sys.modules to resolve annotations).
    module = types.ModuleType(module_name(page) + "_run")
    sys.modules[module.__name__] = module
    try:
        execute(page, module)
    finally:
        del sys.modules[module.__name__]


def test_docs_have_code() -> None:
    """The docs pages are not empty of examples (the test above would pass vacuously)."""
    assert sum(len(BLOCK.findall(p.read_text())) for p in PAGES) >= 5


def test_pages_in_subfolders_run_too() -> None:
    """Pages below docs/ at any depth are collected (the API reference lives in one)."""
    assert any(p.parent != DOCS and p.is_relative_to(DOCS) for p in PAGES)
    assert not [p for p in PAGES if "_build" in p.parts]


def test_every_public_module_has_a_reference_page() -> None:
    """docs/reference/ has one autodoc page per public module, and no stale ones."""
    from tests.test_public_surface import PUBLIC_MODULES

    reference = DOCS / "reference"
    assert {p.stem for p in reference.glob("apisec*.md")} == set(PUBLIC_MODULES)
    for name in PUBLIC_MODULES:
        assert f".. automodule:: {name}\n" in (reference / f"{name}.md").read_text()
