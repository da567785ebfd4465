"""The code blocks in README.md and every Markdown page under docs/ run as written."""

from __future__ import annotations

import re
import sys
import types
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
PAGES = [
    ROOT / "README.md",
    *sorted(p for p in DOCS.rglob("*.md") if "_build" not in p.relative_to(DOCS).parts),
]
_BLOCK = re.compile(r"^```python\n(.*?)^```", re.MULTILINE | re.DOTALL)


def module_name(page: Path) -> str:
    """``fastapi`` for docs/fastapi.md, ``howto_stores`` for docs/howto/stores.md."""
    where = page.relative_to(DOCS) if page.is_relative_to(DOCS) else page.relative_to(ROOT)
    return where.with_suffix("").as_posix().replace("/", "_")


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_python_blocks_execute(page: Path) -> None:
    """Each page's python blocks run in order, in one namespace, without error."""
    blocks = _BLOCK.findall(page.read_text())
    # A real module, as a user's file would be (frameworks such as Litestar look
    # their handlers' module up in sys.modules to resolve annotations).
    module = types.ModuleType(f"docs_{module_name(page)}")
    sys.modules[module.__name__] = module
    try:
        for block in blocks:
            # dont_inherit: run the examples as users would, without this file's __future__ flags.
            code = compile(block, str(page), "exec", dont_inherit=True)
            exec(code, module.__dict__)  # noqa: S102 - our own docs
    finally:
        del sys.modules[module.__name__]


def test_docs_have_code() -> None:
    """The docs pages are not empty of examples (the test above would pass vacuously)."""
    assert sum(len(_BLOCK.findall(p.read_text())) for p in PAGES) >= 5
